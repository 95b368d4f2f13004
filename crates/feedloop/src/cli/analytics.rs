//! `feedloop analytics`: a running server's feedback aggregations and alerts, as a text table
//! or as the API's JSON.

use anyhow::Context;
use clap::{Args, Subcommand};
use feedloop_server::wire::analytics::{AlertList, BucketCounts, FeedbackAnalytics};
use std::fmt::Write;

use super::ServerArgs;
use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum AnalyticsCommand {
    /// Current feedback per time bucket and group: counts, negative rate with its 95 % interval,
    /// ratings, satisfaction, top categories.
    Feedback(FeedbackArgs),
    /// Alerts raised by the regression and negative-spike detectors, newest first.
    Alerts(AlertsArgs),
}

#[derive(Debug, Args)]
pub struct FeedbackArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Start of the range (RFC 3339).
    #[arg(long, env = "FEEDLOOP_ANALYTICS_FROM")]
    pub from: String,
    /// End of the range, exclusive (RFC 3339).
    #[arg(long, env = "FEEDLOOP_ANALYTICS_TO")]
    pub to: String,
    /// hour, day or week (UTC).
    #[arg(long, env = "FEEDLOOP_ANALYTICS_BUCKET", default_value = "day")]
    pub bucket: String,
    /// model, model_version, prompt_name, prompt_version, environment, user_role, tag or
    /// metadata.<key>.
    #[arg(long, env = "FEEDLOOP_ANALYTICS_GROUP_BY")]
    pub group_by: Option<String>,
    /// A list filter as the API takes it, e.g. `environment=prod` or `meta.app=web`; repeatable.
    #[arg(
        long = "filter",
        env = "FEEDLOOP_ANALYTICS_FILTER",
        value_delimiter = ','
    )]
    pub filters: Vec<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Most alerts to show.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print the API's JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(command: AnalyticsCommand) -> anyhow::Result<()> {
    match command {
        AnalyticsCommand::Feedback(args) => feedback(args).await,
        AnalyticsCommand::Alerts(args) => alerts(args).await,
    }
}

/// The query string of an aggregation.
fn feedback_query(args: &FeedbackArgs) -> anyhow::Result<String> {
    let mut pairs = vec![
        ("from".to_owned(), args.from.clone()),
        ("to".to_owned(), args.to.clone()),
        ("bucket".to_owned(), args.bucket.clone()),
    ];
    if let Some(group_by) = &args.group_by {
        pairs.push(("group_by".into(), group_by.clone()));
    }
    for filter in &args.filters {
        let (key, value) = filter
            .split_once('=')
            .with_context(|| format!("--filter {filter:?} is not key=value"))?;
        pairs.push((key.to_owned(), value.to_owned()));
    }
    Ok(serde_urlencoded::to_string(pairs)?)
}

async fn feedback(args: FeedbackArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server.server, &args.server.api_key);
    let path = format!("/api/v1/analytics/feedback?{}", feedback_query(&args)?);
    if args.json {
        let answer: serde_json::Value = client.get(&path).await?;
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        let answer: FeedbackAnalytics = client.get(&path).await?;
        print!("{}", table(&answer));
    }
    Ok(())
}

fn percent(rate: Option<&feedloop_core::stats::Proportion>) -> String {
    match rate {
        Some(p) => format!(
            "{:.1}% [{:.1}–{:.1}]",
            p.rate * 100.0,
            p.low * 100.0,
            p.high * 100.0
        ),
        None => "-".into(),
    }
}

fn top_categories(bucket: &BucketCounts) -> String {
    let mut categories: Vec<(&String, u64)> = bucket
        .categories
        .iter()
        .map(|(name, count)| (name, count.count))
        .collect();
    categories.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    categories
        .iter()
        .take(3)
        .map(|(name, count)| format!("{name}:{count}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line per bucket and group.
pub fn table(answer: &FeedbackAnalytics) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<16} {:>8} {:>8} {:>24} {:>6} {:>6} {:>7}  top categories",
        "bucket", "group", "feedback", "traces", "negative rate [95% CI]", "up", "down", "satisf."
    );
    for bucket in &answer.buckets {
        let satisfaction = bucket
            .satisfaction
            .mean
            .map_or("-".to_owned(), |mean| format!("{mean:+.2}"));
        let _ = writeln!(
            out,
            "{:<20} {:<16} {:>8} {:>8} {:>24} {:>6} {:>6} {:>7}  {}",
            bucket.start.strftime("%Y-%m-%d %H:%M").to_string(),
            bucket.group.as_deref().unwrap_or("(none)"),
            bucket.feedback,
            bucket.traces,
            percent(bucket.negative_traces.rate.as_ref()),
            bucket.ratings.positive,
            bucket.ratings.negative,
            satisfaction,
            top_categories(bucket)
        );
    }
    out
}

async fn alerts(args: AlertsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server.server, &args.server.api_key);
    let path = format!("/api/v1/analytics/alerts?limit={}", args.limit);
    if args.json {
        let answer: serde_json::Value = client.get(&path).await?;
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let answer: AlertList = client.get(&path).await?;
    for alert in answer.alerts {
        println!(
            "{}  {:<15} {}  ({})",
            alert.created_at, alert.kind, alert.message, alert.dedupe_key
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_line_per_bucket_with_the_negative_rate_and_its_interval() {
        let answer: FeedbackAnalytics = serde_json::from_value(serde_json::json!({
            "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "bucket": "day",
            "group_by": "model",
            "buckets": [{
                "start": "2026-01-01T00:00:00Z", "group": "gpt", "feedback": 3,
                "negative_feedback": {"count": 2},
                "traces": 2,
                "negative_traces": {"count": 1, "rate": {"rate": 0.5, "low": 0.0945, "high": 0.9055}},
                "kinds": {}, "categories": {"too_vague": {"count": 1}}, "signals": {},
                "ratings": {"positive": 1, "negative": 1},
                "satisfaction": {"traces": 2, "mean": 0.25}
            }]
        }))
        .unwrap();
        let lines: Vec<String> = table(&answer).lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 2);
        for expected in [
            "2026-01-01 00:00",
            "gpt",
            "50.0% [9.4–90.5]",
            "+0.25",
            "too_vague:1",
        ] {
            assert!(
                lines[1].contains(expected),
                "{expected:?} in {:?}",
                lines[1]
            );
        }
        let args = FeedbackArgs {
            server: ServerArgs {
                server: "http://x".into(),
                api_key: "k".into(),
            },
            from: "2026-01-01T00:00:00Z".into(),
            to: "2026-01-02T00:00:00Z".into(),
            bucket: "day".into(),
            group_by: Some("metadata.app".into()),
            filters: vec!["environment=prod".into()],
            json: false,
        };
        assert_eq!(
            feedback_query(&args).unwrap(),
            "from=2026-01-01T00%3A00%3A00Z&to=2026-01-02T00%3A00%3A00Z&bucket=day&group_by=metadata.app&environment=prod"
        );
    }
}
