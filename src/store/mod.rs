//! The client store of the seeds (`create_graph`, `edit`, `commit`, …), built on
//! [`crate::Replica`].
//!
//! Built so far: the [`EditBuffer`] (the merge rules of uncommitted edits). The store
//! itself (`GraphStore`) comes next.

mod buffer;

pub use buffer::EditBuffer;
