//! Turns a [`Filter`] and a [`PageRequest`] into SQL conditions with bound parameters. The SQL
//! text only ever contains fixed fragments; every value the caller chose is a parameter.

use feedloop_core::filter::{Filter, Order, PageRequest};
use rusqlite::types::Value;

/// The list being filtered: it decides which table each condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `traces t`; feedback conditions become "has feedback that …".
    Traces,
    /// `feedback f LEFT JOIN traces t`; trace conditions read the joined trace.
    Feedback,
}

/// A WHERE clause under construction.
#[derive(Debug, Default)]
pub struct Conditions {
    sql: Vec<String>,
    pub params: Vec<Value>,
}

impl Conditions {
    fn push(&mut self, sql: impl Into<String>, params: impl IntoIterator<Item = Value>) {
        self.sql.push(sql.into());
        self.params.extend(params);
    }

    fn eq(&mut self, column: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.push(format!("{column} = ?"), [Value::Text(value.to_owned())]);
        }
    }

    pub fn to_sql(&self) -> String {
        self.sql.join(" AND ")
    }
}

/// The conditions for `filter` on `subject`, scoped to `project`.
pub fn conditions(subject: Subject, project: i64, filter: &Filter) -> Conditions {
    let mut c = Conditions::default();
    let (time, session) = match subject {
        Subject::Traces => {
            c.push("t.project_id = ?", [Value::Integer(project)]);
            ("t.started_at", "t.session_id")
        }
        Subject::Feedback => {
            c.push("f.project_id = ?", [Value::Integer(project)]);
            ("f.created_at", "COALESCE(f.session_id, t.session_id)")
        }
    };
    if let Some(from) = filter.from {
        c.push(
            format!("{time} >= ?"),
            [Value::Integer(from.as_microsecond())],
        );
    }
    if let Some(to) = filter.to {
        c.push(format!("{time} < ?"), [Value::Integer(to.as_microsecond())]);
    }
    c.eq(session, filter.session_id.as_deref());
    c.eq("t.user_id", filter.user_id.as_deref());
    c.eq("t.user_role", filter.user_role.as_deref());
    c.eq("t.model_name", filter.model.as_deref());
    c.eq("t.model_version", filter.model_version.as_deref());
    c.eq("t.prompt_name", filter.prompt_name.as_deref());
    c.eq("t.prompt_version", filter.prompt_version.as_deref());
    c.eq("t.environment", filter.environment.map(|e| e.as_str()));
    if let Some(tag) = &filter.tag {
        c.push(
            "t.seq IN (SELECT trace_seq FROM trace_tags WHERE project_id = ? AND tag = ?)",
            [Value::Integer(project), Value::Text(tag.clone())],
        );
    }
    let trace_id_column = match subject {
        Subject::Traces => "t.id",
        Subject::Feedback => "f.trace_id",
    };
    c.eq(trace_id_column, filter.trace_id.as_deref());

    let mut feedback = Conditions::default();
    feedback.eq("f.kind", filter.feedback_kind.map(|k| k.as_str()));
    if let Some(category) = &filter.category {
        feedback.push(
            "EXISTS (SELECT 1 FROM json_each(f.categories) WHERE json_each.value = ?)",
            [Value::Text(category.clone())],
        );
    }
    if let Some(sign) = filter.rating {
        feedback.push("f.rating_sign = ?", [Value::Integer(sign.as_i64())]);
    }
    feedback.eq("f.source", filter.source.map(|s| s.as_str()));
    let metadata_doc = match subject {
        Subject::Traces => "t.doc",
        Subject::Feedback => "f.doc",
    };
    for (key, value) in &filter.metadata {
        let (as_json, as_string) = json_literals(value);
        c.push(
            format!("({metadata_doc} -> ?) IN (?, ?)"),
            [
                Value::Text(format!("$.metadata.\"{key}\"")),
                Value::Text(as_json),
                Value::Text(as_string),
            ],
        );
    }
    if !feedback.sql.is_empty() {
        match subject {
            Subject::Traces => c.push(
                format!(
                    "EXISTS (SELECT 1 FROM feedback f WHERE f.project_id = t.project_id AND f.trace_id = t.id AND {})",
                    feedback.to_sql()
                ),
                feedback.params,
            ),
            Subject::Feedback => c.push(feedback.to_sql(), feedback.params),
        }
    }
    c
}

/// A filter value compared with a JSON value: as the literal it spells (`2`, `true`) and as a
/// string (`"2"`), so `app_version=2` finds both `2` and `"2"`.
fn json_literals(value: &str) -> (String, String) {
    let as_string = serde_json::Value::String(value.to_owned()).to_string();
    let as_json = match serde_json::from_str::<serde_json::Value>(value) {
        Ok(
            parsed @ (serde_json::Value::Number(_)
            | serde_json::Value::Bool(_)
            | serde_json::Value::Null),
        ) => parsed.to_string(),
        _ => as_string.clone(),
    };
    (as_json, as_string)
}

/// Adds the keyset condition and returns the ORDER BY and LIMIT clauses for a page. One more row
/// than the limit is fetched, to know whether a next page exists.
pub fn page(c: &mut Conditions, time: &str, seq: &str, page: &PageRequest) -> String {
    let (cmp, dir) = match page.order {
        Order::Desc => ("<", "DESC"),
        Order::Asc => (">", "ASC"),
    };
    if let Some(after) = page.after {
        c.push(
            format!("({time}, {seq}) {cmp} (?, ?)"),
            [Value::Integer(after.time_micros), Value::Integer(after.seq)],
        );
    }
    format!(
        "ORDER BY {time} {dir}, {seq} {dir} LIMIT {}",
        u64::from(page.limit) + 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_values_match_as_literal_and_as_string() {
        assert_eq!(json_literals("2"), ("2".into(), "\"2\"".into()));
        assert_eq!(json_literals("true"), ("true".into(), "\"true\"".into()));
        assert_eq!(
            json_literals("beta"),
            ("\"beta\"".into(), "\"beta\"".into())
        );
        assert_eq!(json_literals("[1]"), ("\"[1]\"".into(), "\"[1]\"".into()));
    }

    #[test]
    fn values_are_parameters_never_sql() {
        let filter = Filter {
            user_id: Some("x' OR 1=1 --".into()),
            ..Default::default()
        };
        let c = conditions(Subject::Traces, 1, &filter);
        assert!(!c.to_sql().contains("OR 1=1"));
        assert_eq!(c.params.len(), 2);
    }
}
