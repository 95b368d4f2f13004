//! Identifiers. Traces, spans and feedback carry client-chosen ids, so that an app can refer to a
//! trace before feedloop has seen it and retries are idempotent; projects have server ids.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::ValidationError;

/// Longest client-chosen id, in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// A project (tenant). Nothing crosses projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProjectId(pub i64);

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Checks a client-chosen id: 1 to 128 bytes of printable ASCII without spaces, so ids are safe
/// in URLs paths, logs and file names alike.
pub fn check_client_id(field: &str, id: &str) -> Result<(), ValidationError> {
    if id.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_ID_BYTES} bytes"),
        ));
    }
    if let Some(c) = id.chars().find(|c| !c.is_ascii_graphic() || *c == '/') {
        return Err(ValidationError::new(
            field,
            format!("must be printable ascii without spaces or '/', found {c:?}"),
        ));
    }
    Ok(())
}

macro_rules! client_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `id`, naming `field` in the error.
            pub fn parse(field: &str, id: impl Into<String>) -> Result<Self, ValidationError> {
                let id = id.into();
                check_client_id(field, &id)?;
                Ok(Self(id))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

client_id!(
    /// The id of a trace, chosen by the client (or by the server when the client sends none).
    TraceId
);
client_id!(
    /// The id of a span, unique within its trace.
    SpanId
);
client_id!(
    /// The id of one feedback item; re-sending the same id is an idempotent retry.
    FeedbackId
);
client_id!(
    /// The id of a lesson, chosen by the client or made by the server (`ls_…`).
    LessonId
);
client_id!(
    /// The id of one context injection, made by the server (`inj_…`); the app logs it with its
    /// trace.
    InjectionId
);
client_id!(
    /// The id of a dataset item: chosen by the client, or derived from the item's trace
    /// (`di_…`), so that adding the same trace twice names the same item.
    DatasetItemId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_uuids_and_otel_hex() {
        assert!(TraceId::parse("id", "4bf92f3577b34da6a3ce929d0e0e4736").is_ok());
        assert!(TraceId::parse("id", "0190f3c2-7c1e-7a3e-9b7e-2f2d3c4b5a69").is_ok());
        assert!(FeedbackId::parse("id", "fb:42_a.b").is_ok());
    }

    #[test]
    fn ids_reject_empty_long_spaces_and_slashes() {
        assert_eq!(
            TraceId::parse("trace_id", "").unwrap_err().field,
            "trace_id"
        );
        assert!(TraceId::parse("id", "a".repeat(129)).is_err());
        assert!(TraceId::parse("id", "a b").is_err());
        assert!(TraceId::parse("id", "a/b").is_err());
        assert!(TraceId::parse("id", "é").is_err());
    }
}
