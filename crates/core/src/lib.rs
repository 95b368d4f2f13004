//! feedloop's domain model: what a trace, a span, a piece of feedback and a project's taxonomy are,
//! and the rules that hold for them (validation, merging parts of a trace, polarity of feedback).
//!
//! This crate does no IO: no files, no network, no clock of its own (see [`clock::Clock`]). The
//! storage, server and binary crates build on it; nothing here knows about SQL or HTTP.

pub mod auth;
pub mod clock;
pub mod dataset;
pub mod error;
pub mod events;
pub mod feedback;
pub mod filter;
pub mod ids;
pub mod lesson;
pub mod pii;
pub mod privacy;
pub mod review;
pub mod signals;
pub mod stats;
pub mod taxonomy;
pub mod trace;

pub use error::ValidationError;
pub use ids::{DatasetItemId, FeedbackId, InjectionId, LessonId, ProjectId, SpanId, TraceId};
pub use jiff::Timestamp;
