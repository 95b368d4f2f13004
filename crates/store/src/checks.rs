//! Checks of stored-data rules that do not depend on the backend.

use feedloop_core::ValidationError;
use feedloop_core::feedback::{Feedback, FeedbackValue};
use feedloop_core::lesson::Lesson;

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

/// A new lesson starts at version 1 and takes an id that is free (`stored` is the version
/// stored under its id, if any).
pub(crate) fn check_new_lesson(lesson: &Lesson, stored: Option<i64>) -> Result<()> {
    if stored.is_some() {
        return Err(StoreError::Conflict {
            item: None,
            field: "id".into(),
            message: format!("lesson {:?} exists", lesson.id.as_str()),
        });
    }
    if lesson.version != 1 {
        return Err(StoreError::Invalid {
            item: None,
            error: ValidationError::new("version", "must be 1 for a new lesson"),
        });
    }
    Ok(())
}

/// An update is the next version of the stored one: two editors who read the same version
/// cannot both write theirs.
pub(crate) fn check_next_version(lesson: &Lesson, stored: Option<i64>) -> Result<()> {
    let Some(stored) = stored else {
        return Err(StoreError::NotFound {
            what: "lesson",
            id: lesson.id.as_str().to_owned(),
        });
    };
    if i64::from(lesson.version) != stored + 1 {
        return Err(StoreError::Conflict {
            item: None,
            field: "version".into(),
            message: format!(
                "lesson {:?} is at version {stored}, so the next version is {}, not {}",
                lesson.id.as_str(),
                stored + 1,
                lesson.version
            ),
        });
    }
    Ok(())
}
