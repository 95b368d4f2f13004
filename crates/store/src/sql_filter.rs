//! Turns a [`Filter`] and a [`PageRequest`] into SQL conditions with bound parameters, for both
//! SQL backends. The SQL text only ever contains fixed fragments; every value the caller chose
//! is a parameter ([`SqlValue`]).
//!
//! The backends share the schema's shape (the same tables, columns and derived filter columns),
//! so most fragments are the same text. A [`Dialect`] picks the few that differ: category
//! membership (a JSON array in SQLite, a `TEXT[]` in PostgreSQL), metadata matching (JSON path
//! on `doc` in SQLite, containment on the `metadata JSONB` column in PostgreSQL), and how
//! placeholders are spelled (`?` in SQLite, `$1, $2, …` in PostgreSQL).

use feedloop_core::filter::{Cursor, Filter, Order, Page, PageRequest};

/// The SQL a statement is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound parameter, independent of the driver; converted to a `rusqlite` value or a
/// `tokio-postgres` parameter where the statement runs.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Integer(i64),
    Real(f64),
    Text(String),
    /// A `JSONB` parameter in PostgreSQL; SQLite receives its text.
    Json(serde_json::Value),
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            Self::Integer(value) => ToSqlOutput::Borrowed(ValueRef::Integer(*value)),
            Self::Real(value) => ToSqlOutput::Borrowed(ValueRef::Real(*value)),
            Self::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Self::Json(json) => ToSqlOutput::Owned(Value::Text(json.to_string())),
        })
    }
}

impl SqlValue {
    /// The value as a `tokio-postgres` parameter: `BIGINT`, `TEXT` or `JSONB`.
    pub fn as_postgres(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        match self {
            Self::Integer(value) => value,
            Self::Real(value) => value,
            Self::Text(text) => text,
            Self::Json(json) => json,
        }
    }
}

/// The list being filtered: it decides which table each condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `traces t`; feedback conditions become "has feedback that …".
    Traces,
    /// `feedback f LEFT JOIN traces t`; trace conditions read the joined trace.
    Feedback,
}

/// A WHERE clause under construction. Fragments are written with `?` for each parameter, and
/// never contain a `?` otherwise (PostgreSQL's `jsonb ? key` operator is not used), so that
/// [`Conditions::to_sql`] can number them for PostgreSQL.
#[derive(Debug)]
pub struct Conditions {
    dialect: Dialect,
    sql: Vec<String>,
    pub params: Vec<SqlValue>,
}

impl Conditions {
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            sql: Vec::new(),
            params: Vec::new(),
        }
    }

    fn push(&mut self, sql: impl Into<String>, params: impl IntoIterator<Item = SqlValue>) {
        self.sql.push(sql.into());
        self.params.extend(params);
    }

    fn eq(&mut self, column: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.push(format!("{column} = ?"), [SqlValue::Text(value.to_owned())]);
        }
    }

    /// Restricts a trace list to these ids, as one JSON array parameter (a list of any length
    /// is one placeholder on both backends).
    pub fn push_trace_ids(&mut self, ids: &[&str]) {
        let fragment = match self.dialect {
            Dialect::Sqlite => "t.id IN (SELECT value FROM json_each(?))",
            Dialect::Postgres => "t.id IN (SELECT jsonb_array_elements_text(?))",
        };
        let array = serde_json::Value::from(ids.to_vec());
        self.push(fragment, [SqlValue::Json(array)]);
    }

    /// The conditions joined with AND, placeholders spelled for the dialect.
    pub fn to_sql(&self) -> String {
        let joined = self.sql.join(" AND ");
        match self.dialect {
            Dialect::Sqlite => joined,
            Dialect::Postgres => number_placeholders(&joined),
        }
    }

    /// The conditions joined with AND, placeholders still `?`: for statements that have
    /// parameters of their own before these and number them all at once (see
    /// [`number_placeholders`]).
    pub fn to_anonymous_sql(&self) -> String {
        self.sql.join(" AND ")
    }

    /// The parameters as `tokio-postgres` expects them, in placeholder order.
    pub fn postgres_params(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        self.params.iter().map(SqlValue::as_postgres).collect()
    }
}

/// Rewrites each `?` as `$1`, `$2`, … in order.
pub fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 0;
    for c in sql.chars() {
        if c == '?' {
            next += 1;
            out.push('$');
            out.push_str(&next.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// The conditions for `filter` on `subject`, scoped to `project`.
pub fn conditions(dialect: Dialect, subject: Subject, project: i64, filter: &Filter) -> Conditions {
    let mut c = Conditions::new(dialect);
    let (time, session) = match subject {
        Subject::Traces => {
            c.push("t.project_id = ?", [SqlValue::Integer(project)]);
            ("t.started_at", "t.session_id")
        }
        Subject::Feedback => {
            c.push("f.project_id = ?", [SqlValue::Integer(project)]);
            ("f.created_at", "COALESCE(f.session_id, t.session_id)")
        }
    };
    if let Some(from) = filter.from {
        c.push(
            format!("{time} >= ?"),
            [SqlValue::Integer(from.as_microsecond())],
        );
    }
    if let Some(to) = filter.to {
        c.push(
            format!("{time} < ?"),
            [SqlValue::Integer(to.as_microsecond())],
        );
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
            [SqlValue::Integer(project), SqlValue::Text(tag.clone())],
        );
    }
    let trace_id_column = match subject {
        Subject::Traces => "t.id",
        Subject::Feedback => "f.trace_id",
    };
    c.eq(trace_id_column, filter.trace_id.as_deref());
    // The stored estimate (see `signals.rs`); a trace without one matches neither bound.
    for (bound, operator) in [
        (filter.satisfaction_below, "<"),
        (filter.satisfaction_above, ">"),
    ] {
        if let Some(bound) = bound {
            c.push(
                format!(
                    "EXISTS (SELECT 1 FROM trace_satisfaction s WHERE s.project_id = ? AND s.trace_id = {trace_id_column} AND s.score {operator} ?)"
                ),
                [SqlValue::Integer(project), SqlValue::Real(bound)],
            );
        }
    }

    let mut feedback = Conditions::new(dialect);
    feedback.eq("f.kind", filter.feedback_kind.map(|k| k.as_str()));
    if let Some(category) = &filter.category {
        let membership = match dialect {
            Dialect::Sqlite => {
                "EXISTS (SELECT 1 FROM json_each(f.categories) WHERE json_each.value = ?)"
            }
            // `@>` rather than `= ANY (…)`: the GIN index on `categories` serves containment.
            Dialect::Postgres => "f.categories @> ARRAY[?::text]",
        };
        feedback.push(membership, [SqlValue::Text(category.clone())]);
    }
    if let Some(sign) = filter.rating {
        feedback.push("f.rating_sign = ?", [SqlValue::Integer(sign.as_i64())]);
    }
    feedback.eq("f.source", filter.source.map(|s| s.as_str()));
    if filter.negative_feedback {
        feedback.push("f.negative = 1 AND f.superseded_by IS NULL", []);
    }
    // The trace's metadata on the trace list, the item's own on the feedback list.
    let metadata_of = match subject {
        Subject::Traces => "t",
        Subject::Feedback => "f",
    };
    for (key, value) in &filter.metadata {
        push_metadata_match(&mut c, metadata_of, key, value);
    }
    if !feedback.sql.is_empty() {
        match subject {
            Subject::Traces => c.push(
                format!(
                    "EXISTS (SELECT 1 FROM feedback f WHERE f.project_id = t.project_id AND f.trace_id = t.id AND {})",
                    feedback.sql.join(" AND ")
                ),
                feedback.params,
            ),
            Subject::Feedback => c.push(feedback.sql.join(" AND "), feedback.params),
        }
    }
    c
}

/// `metadata.<key>` of the row aliased `alias` equals `value` as a JSON literal or as a string.
fn push_metadata_match(c: &mut Conditions, alias: &str, key: &str, value: &str) {
    let (as_literal, as_string) = json_literals(value);
    match c.dialect {
        Dialect::Sqlite => c.push(
            format!("({alias}.doc -> ?) IN (?, ?)"),
            [
                SqlValue::Text(format!("$.metadata.\"{key}\"")),
                SqlValue::Text(as_literal.to_string()),
                SqlValue::Text(as_string.to_string()),
            ],
        ),
        // Containment of a one-key object, which the GIN (jsonb_path_ops) index answers. For a
        // scalar on the right, `{"k": [2]} @> {"k": 2}` is false, so this is equality of the
        // key's value.
        Dialect::Postgres => {
            let object = |value: serde_json::Value| {
                SqlValue::Json(serde_json::Value::Object(
                    [(key.to_owned(), value)].into_iter().collect(),
                ))
            };
            if as_literal == as_string {
                c.push(format!("{alias}.metadata @> ?"), [object(as_string)]);
            } else {
                c.push(
                    format!("({alias}.metadata @> ? OR {alias}.metadata @> ?)"),
                    [object(as_literal), object(as_string)],
                );
            }
        }
    }
}

/// A filter value compared with a JSON value: as the literal it spells (`2`, `true`) and as a
/// string (`"2"`), so `app_version=2` finds both `2` and `"2"`.
fn json_literals(value: &str) -> (serde_json::Value, serde_json::Value) {
    let as_string = serde_json::Value::String(value.to_owned());
    let as_literal = match serde_json::from_str::<serde_json::Value>(value) {
        Ok(
            parsed @ (serde_json::Value::Number(_)
            | serde_json::Value::Bool(_)
            | serde_json::Value::Null),
        ) => parsed,
        _ => as_string.clone(),
    };
    (as_literal, as_string)
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
            [
                SqlValue::Integer(after.time_micros),
                SqlValue::Integer(after.seq),
            ],
        );
    }
    format!(
        "ORDER BY {time} {dir}, {seq} {dir} LIMIT {}",
        u64::from(page.limit) + 1
    )
}

/// Cuts the extra row fetched for a page (see [`page`]) and turns the last item kept into the
/// next page's cursor.
pub fn finish_page<T>(
    mut items: Vec<T>,
    page: &PageRequest,
    cursor_of: impl Fn(&T) -> Cursor,
) -> Page<T> {
    let next = if items.len() > page.limit as usize {
        items.truncate(page.limit as usize);
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { items, next }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feedloop_core::feedback::FeedbackKind;
    use feedloop_core::filter::Cursor;

    fn literals(value: &str) -> (String, String) {
        let (literal, string) = json_literals(value);
        (literal.to_string(), string.to_string())
    }

    #[test]
    fn metadata_values_match_as_literal_and_as_string() {
        assert_eq!(literals("2"), ("2".into(), "\"2\"".into()));
        assert_eq!(literals("true"), ("true".into(), "\"true\"".into()));
        assert_eq!(literals("beta"), ("\"beta\"".into(), "\"beta\"".into()));
        assert_eq!(literals("[1]"), ("\"[1]\"".into(), "\"[1]\"".into()));
    }

    #[test]
    fn values_are_parameters_never_sql() {
        let filter = Filter {
            user_id: Some("x' OR 1=1 --".into()),
            metadata: vec![("k".into(), "'; DROP TABLE traces; --".into())],
            ..Default::default()
        };
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let c = conditions(dialect, Subject::Traces, 1, &filter);
            let sql = c.to_sql();
            assert!(!sql.contains("OR 1=1"), "{sql}");
            assert!(!sql.contains("DROP"), "{sql}");
        }
    }

    #[test]
    fn postgres_placeholders_are_numbered_in_parameter_order() {
        let filter = Filter {
            user_id: Some("u1".into()),
            category: Some("too_vague".into()),
            feedback_kind: Some(FeedbackKind::Category),
            metadata: vec![("app_version".into(), "2".into())],
            ..Default::default()
        };
        let mut c = conditions(Dialect::Postgres, Subject::Traces, 7, &filter);
        let request = PageRequest {
            after: Some(Cursor {
                time_micros: 5,
                seq: 6,
            }),
            ..Default::default()
        };
        let tail = page(&mut c, "t.started_at", "t.seq", &request);
        assert_eq!(
            c.to_sql(),
            "t.project_id = $1 AND t.user_id = $2 \
             AND (t.metadata @> $3 OR t.metadata @> $4) \
             AND EXISTS (SELECT 1 FROM feedback f WHERE f.project_id = t.project_id AND f.trace_id = t.id \
             AND f.kind = $5 AND f.categories @> ARRAY[$6::text]) \
             AND (t.started_at, t.seq) < ($7, $8)"
        );
        assert_eq!(tail, "ORDER BY t.started_at DESC, t.seq DESC LIMIT 51");
        assert_eq!(c.params.len(), 8);
        assert_eq!(
            c.params[2],
            SqlValue::Json(serde_json::json!({"app_version": 2}))
        );
        assert_eq!(
            c.params[3],
            SqlValue::Json(serde_json::json!({"app_version": "2"}))
        );
    }

    #[test]
    fn sqlite_keeps_anonymous_placeholders() {
        let filter = Filter {
            category: Some("too_vague".into()),
            metadata: vec![("region".into(), "eu".into())],
            ..Default::default()
        };
        let c = conditions(Dialect::Sqlite, Subject::Feedback, 1, &filter);
        assert_eq!(
            c.to_sql(),
            "f.project_id = ? AND (f.doc -> ?) IN (?, ?) \
             AND EXISTS (SELECT 1 FROM json_each(f.categories) WHERE json_each.value = ?)"
        );
        assert_eq!(c.params.len(), 5);
    }
}
