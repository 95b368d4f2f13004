//! Checks of stored-data rules that do not depend on the backend.

use feedloop_core::feedback::{Feedback, FeedbackValue};

use crate::{ItemRef, Result, StoreError};

/// Every category the feedback names must be active in the project's taxonomy (`active`).
pub(crate) fn check_categories(
    feedback: &Feedback,
    active: &[String],
    item: Option<ItemRef>,
) -> Result<()> {
    let field = match &feedback.value {
        FeedbackValue::Annotation(_) => "annotation.categories",
        _ => "categories",
    };
    for (index, name) in feedback.value.categories().iter().enumerate() {
        if !active.contains(name) {
            return Err(StoreError::UnknownCategory {
                item,
                field: format!("{field}[{index}]"),
                name: name.clone(),
            });
        }
    }
    Ok(())
}
