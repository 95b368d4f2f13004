//! The analytics statements for both SQL backends, built from fixed fragments around the
//! conditions of [`crate::sql_filter`]; every caller-chosen value (a metadata key, filter
//! values) is a bound parameter. Bucket widths and feedback kinds are constants of the code and
//! are written into the text.
//!
//! Each feedback aggregation is one `GROUP BY bucket, group` statement; the per-kind counts are
//! conditional sums in the main statement, categories and signal types each a second pass over
//! only the rows that have them, satisfaction a third over distinct traces.

use feedloop_core::feedback::FeedbackKind;
use feedloop_core::filter::Filter;

use crate::analytics::{Dimension, FeedbackQuery, VersionKind};
use crate::sql_filter::{self, Dialect, SqlValue, Subject};

/// A statement and its parameters, placeholders spelled for the dialect.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl Statement {
    fn new(dialect: Dialect, anonymous_sql: String, params: Vec<SqlValue>) -> Self {
        let sql = match dialect {
            Dialect::Sqlite => anonymous_sql,
            Dialect::Postgres => sql_filter::number_placeholders(&anonymous_sql),
        };
        Self { sql, params }
    }

    pub fn postgres_params(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        self.params.iter().map(SqlValue::as_postgres).collect()
    }
}

/// The statements of one feedback aggregation. Each returns rows starting with (bucket start,
/// group value).
#[derive(Debug, Clone)]
pub struct FeedbackStatements {
    /// Then: items, negative items, traces, negative traces, positive ratings, negative
    /// ratings, then one count per kind of [`FeedbackKind::ALL`].
    pub main: Statement,
    /// Then: category, items.
    pub categories: Statement,
    /// Then: signal type, items.
    pub signals: Statement,
    /// Then: traces with an estimate, mean estimate.
    pub satisfaction: Statement,
}

/// The SQL of the bucket that holds `f.created_at` (see `Bucket::start_of`; times are after
/// the epoch, so truncating division floors).
fn bucket_sql(query: &FeedbackQuery) -> String {
    let (width, offset) = (query.bucket.width_micros(), query.bucket.offset_micros());
    format!("(((f.created_at - {offset}) / {width}) * {width} + {offset})")
}

/// The group's SQL expression (as text) with its parameters, and the join it needs.
fn group_sql(dialect: Dialect, group_by: Option<&Dimension>) -> (String, Vec<SqlValue>, &str) {
    const TAG_JOIN: &str =
        "LEFT JOIN trace_tags tg ON tg.project_id = t.project_id AND tg.trace_seq = t.seq";
    let column = |name: &str| (name.to_owned(), Vec::new(), "");
    match group_by {
        None => ("CAST(NULL AS TEXT)".into(), Vec::new(), ""),
        Some(Dimension::Model) => column("t.model_name"),
        Some(Dimension::ModelVersion) => column("t.model_version"),
        Some(Dimension::PromptName) => column("t.prompt_name"),
        Some(Dimension::PromptVersion) => column("t.prompt_version"),
        Some(Dimension::Environment) => column("t.environment"),
        Some(Dimension::UserRole) => column("t.user_role"),
        Some(Dimension::Tag) => ("tg.tag".into(), Vec::new(), TAG_JOIN),
        // A string value as itself, anything else as its JSON text, as PostgreSQL's `->>` does.
        Some(Dimension::Metadata(key)) => match dialect {
            Dialect::Sqlite => {
                let path = SqlValue::Text(format!("$.metadata.\"{key}\""));
                (
                    "CASE WHEN json_type(t.doc, ?) = 'text' THEN t.doc ->> ? ELSE t.doc -> ? END"
                        .into(),
                    vec![path.clone(), path.clone(), path],
                    "",
                )
            }
            Dialect::Postgres => (
                "(t.metadata ->> CAST(? AS TEXT))".into(),
                vec![SqlValue::Text(key.clone())],
                "",
            ),
        },
    }
}

/// `FROM … WHERE …` of current feedback in the query's range matching its filter, with the
/// joins the group needs; returns the text and its parameters.
fn feedback_source(
    dialect: Dialect,
    project: i64,
    query: &FeedbackQuery,
    group_join: &str,
    extra_join: &str,
    extra_condition: &str,
) -> (String, Vec<SqlValue>) {
    let filter = Filter {
        from: Some(query.from),
        to: Some(query.to),
        ..query.filter.clone()
    };
    let conditions = sql_filter::conditions(dialect, Subject::Feedback, project, &filter);
    let sql = format!(
        "FROM feedback f
         LEFT JOIN traces t ON t.project_id = f.project_id AND t.id = f.trace_id
         {group_join} {extra_join}
         WHERE {} AND f.superseded_by IS NULL {extra_condition}",
        conditions.to_anonymous_sql()
    );
    (sql, conditions.params)
}

/// The statements that aggregate `query` for `project`.
pub fn feedback_statements(
    dialect: Dialect,
    project: i64,
    query: &FeedbackQuery,
) -> FeedbackStatements {
    let bucket = bucket_sql(query);
    let (group, group_params, group_join) = group_sql(dialect, query.group_by.as_ref());
    let statement = |select: String, extra_join: &str, extra_condition: &str, tail: &str| {
        let (source, source_params) = feedback_source(
            dialect,
            project,
            query,
            group_join,
            extra_join,
            extra_condition,
        );
        let mut params = group_params.clone();
        params.extend(source_params);
        Statement::new(
            dialect,
            format!("SELECT {bucket} AS b, {group} AS g, {select} {source} {tail}"),
            params,
        )
    };

    let kinds: Vec<String> = FeedbackKind::ALL
        .iter()
        .map(|kind| {
            format!(
                "SUM(CASE WHEN f.kind = '{}' THEN 1 ELSE 0 END)",
                kind.as_str()
            )
        })
        .collect();
    let main = statement(
        format!(
            "COUNT(*), SUM(f.negative), COUNT(DISTINCT f.trace_id),
             COUNT(DISTINCT CASE WHEN f.negative = 1 THEN f.trace_id END),
             SUM(CASE WHEN f.rating_sign = 1 THEN 1 ELSE 0 END),
             SUM(CASE WHEN f.rating_sign = -1 THEN 1 ELSE 0 END),
             {}",
            kinds.join(", ")
        ),
        "",
        "",
        "GROUP BY 1, 2",
    );
    let (category_join, category) = match dialect {
        Dialect::Sqlite => ("CROSS JOIN json_each(f.categories) c", "c.value"),
        Dialect::Postgres => (
            "CROSS JOIN LATERAL unnest(f.categories) AS c(value)",
            "c.value",
        ),
    };
    let categories = statement(
        format!("{category}, COUNT(*)"),
        category_join,
        "AND f.categories IS NOT NULL",
        "GROUP BY 1, 2, 3",
    );
    let signal_type = match dialect {
        Dialect::Sqlite => "(f.doc ->> '$.value.type')",
        Dialect::Postgres => "((f.doc::json -> 'value') ->> 'type')",
    };
    let signals = statement(
        format!("{signal_type}, COUNT(*)"),
        "",
        "AND f.kind = 'signal'",
        "GROUP BY 1, 2, 3",
    );
    let traces = statement(
        "f.project_id AS p, f.trace_id AS tr".into(),
        "",
        "",
        "GROUP BY 1, 2, 3, 4",
    );
    let satisfaction = Statement {
        sql: format!(
            "SELECT x.b, x.g, COUNT(*), AVG(s.score) FROM ({}) x
             JOIN trace_satisfaction s ON s.project_id = x.p AND s.trace_id = x.tr
             GROUP BY 1, 2",
            traces.sql
        ),
        params: traces.params,
    };
    FeedbackStatements {
        main,
        categories,
        signals,
        satisfaction,
    }
}

/// Counts the traces matching `filter` and those with current negative feedback.
pub fn negative_counts(dialect: Dialect, project: i64, filter: &Filter) -> Statement {
    let conditions = sql_filter::conditions(dialect, Subject::Traces, project, filter);
    Statement::new(
        dialect,
        format!(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN EXISTS (
                 SELECT 1 FROM feedback f WHERE f.project_id = t.project_id AND f.trace_id = t.id
                   AND f.negative = 1 AND f.superseded_by IS NULL) THEN 1 ELSE 0 END), 0)
             FROM traces t WHERE {}",
            conditions.to_anonymous_sql()
        ),
        conditions.params,
    )
}

/// The versions of `kind` with traces started in `from..to` (microseconds): family, version,
/// first start, last start, traces.
pub fn version_traffic(
    dialect: Dialect,
    project: i64,
    kind: VersionKind,
    from: i64,
    to: i64,
) -> Statement {
    let (name, version) = match kind {
        VersionKind::Model => ("t.model_name", "t.model_version"),
        VersionKind::Prompt => ("t.prompt_name", "t.prompt_version"),
    };
    Statement::new(
        dialect,
        format!(
            "SELECT {name}, {version}, MIN(t.started_at), MAX(t.started_at), COUNT(*)
             FROM traces t
             WHERE t.project_id = ? AND t.started_at >= ? AND t.started_at < ?
               AND {name} IS NOT NULL AND {version} IS NOT NULL
             GROUP BY 1, 2 ORDER BY 1, 3, 2"
        ),
        vec![
            SqlValue::Integer(project),
            SqlValue::Integer(from),
            SqlValue::Integer(to),
        ],
    )
}
