//! The SQLite side of the filter builder shared with PostgreSQL ([`crate::sql_filter`]): the
//! same conditions, with `?` placeholders and SQLite's JSON functions.

use feedloop_core::filter::Filter;

use crate::sql_filter::{self, Dialect};
pub use crate::sql_filter::{Conditions, Subject, page};

/// The conditions for `filter` on `subject`, scoped to `project`, in SQLite's dialect.
pub fn conditions(subject: Subject, project: i64, filter: &Filter) -> Conditions {
    sql_filter::conditions(Dialect::Sqlite, subject, project, filter)
}
