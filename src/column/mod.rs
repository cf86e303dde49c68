//! Typed property columns with per-cell Lamport stamps.
//!
//! Owns how property values are *stored*: [`store`] keeps one struct-of-arrays
//! [`Column`] per path (`f64`, `[f32; 3]`, `[f32; 4]`, packed RGB, `bool`, string, JSON),
//! each cell with its LWW [`Stamp`](crate::ids::Stamp), and a dynamic fallback for
//! cells of another kind; [`value`] defines the values read and written; [`kernels`]
//! holds the vector/quaternion/colour math; [`dirty`] the per-column bitmap of rows
//! written since the change feed last took it.
//!
//! Invariants (details in each file):
//! - `values`, `stamps` and `present` of a column have equal length, and index *i* in
//!   each describes the same cell (row *i*);
//! - a cell lives in exactly one place (typed column xor dynamic map);
//! - nothing here knows the scene graph, node keys or what an op means: callers decide
//!   which value and stamp to write. The op semantics are in [`crate::apply`].
//!
//! Read [`crate::graph`] next.

pub mod dirty;
pub mod kernels;
pub mod store;
pub mod value;

pub use dirty::RowBits;
pub use store::{Column, PathColumn, PropertyStore, Row, TypedColumn};
pub use value::{Kind, Rgb, TextCell, Value, ValueRef, f32_to_f64, f32_to_json, f64_to_json};
