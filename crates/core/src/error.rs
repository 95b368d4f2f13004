//! Validation errors: the caller's input broke a rule of the domain model.

use std::fmt;

/// One broken rule, naming the field (a dotted path such as `rating.value` or `categories[1]`)
/// and what is wrong with it. Messages are lowercase and have no final period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Returns the same error with `prefix` put before its field path, so that an error raised
    /// deep inside a value can name its place in the whole request (`[3].rating.value`).
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = join_path(prefix, &self.field);
        self
    }
}

/// Joins two parts of a field path: `join_path("a", "b") == "a.b"`, `join_path("a", "[0]") == "a[0]"`.
pub fn join_path(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if field.starts_with('[') => format!("{prefix}{field}"),
        (false, false) => format!("{prefix}.{field}"),
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ValidationError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_with_dots_and_brackets() {
        assert_eq!(join_path("", "a"), "a");
        assert_eq!(join_path("[2]", "rating.value"), "[2].rating.value");
        assert_eq!(join_path("feedback", "[0]"), "feedback[0]");
        assert_eq!(
            ValidationError::new("x", "bad").within("items[1]").field,
            "items[1].x"
        );
    }
}
