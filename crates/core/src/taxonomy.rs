//! A project's feedback taxonomy: the reasons users and reviewers can pick ("what was wrong?").
//! Every project starts with the defaults of the product design and adds its own; a category is
//! retired rather than deleted, so old feedback keeps its meaning.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// The categories every new project starts with, with their descriptions.
pub const DEFAULT_CATEGORIES: [(&str, &str); 8] = [
    ("factually_incorrect", "states something that is not true"),
    ("too_vague", "not specific or concrete enough to act on"),
    (
        "wrong_tone",
        "the tone does not fit the user or the situation",
    ),
    ("incomplete", "leaves out part of what was asked"),
    (
        "misunderstood_intent",
        "answers a different question than the one asked",
    ),
    (
        "outdated",
        "relies on information that is no longer current",
    ),
    ("unsafe", "harmful, insecure or against policy"),
    (
        "formatting",
        "the content may be right but the form is wrong",
    ),
];

/// Longest category or signal-type name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// One reason in a project's taxonomy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub name: String,
    pub description: Option<String>,
    pub created_at: Timestamp,
    /// Set once the category is retired: feedback may no longer pick it.
    pub retired_at: Option<Timestamp>,
}

impl Category {
    pub fn is_active(&self) -> bool {
        self.retired_at.is_none()
    }
}

/// Checks a taxonomy name: snake_case ascii, starting with a letter, at most 64 bytes.
pub fn check_name(field: &str, name: &str) -> Result<(), ValidationError> {
    let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let snake_case = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !starts_with_letter || !snake_case || name.len() > MAX_NAME_BYTES {
        return Err(ValidationError::new(
            field,
            format!(
                "{name:?} is not a valid name: use snake_case ascii starting with a letter, at most {MAX_NAME_BYTES} bytes"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_names() {
        for (name, _) in DEFAULT_CATEGORIES {
            check_name("name", name).unwrap();
        }
    }

    #[test]
    fn names_must_be_snake_case() {
        assert!(check_name("n", "wrong_grounding").is_ok());
        assert!(check_name("n", "Wrong-Grounding").is_err());
        assert!(check_name("n", "1abc").is_err());
        assert!(check_name("n", "").is_err());
    }
}
