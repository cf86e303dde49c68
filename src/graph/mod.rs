//! The scene hierarchy: nodes in `slotmap` arenas, parent links, tombstones, and the
//! read API ([`NodeRef`], canonical JSON).
//!
//! Owns node lifecycle and the one-parent, acyclic hierarchy (invariants in
//! `scene`). Properties are stored in [`crate::column`] columns, indexed by each
//! node's row. Node keys are interned to [`NodeKey`](crate::ids::NodeKey)s that never
//! leave the process.
//!
//! This module does not decide what an op does; [`crate::apply`] does, using the
//! structural primitives here. Read [`crate::apply`] next.

mod changes;
mod scene;
mod view;

pub use changes::Changes;
pub use scene::{Node, SceneGraph};
pub use view::NodeRef;
