//! Problem clusters: the traces that carry negative feedback, grouped by meaning.

pub mod group;
pub mod terms;
