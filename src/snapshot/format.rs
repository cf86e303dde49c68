//! The archived layout of a snapshot (rkyv 0.8, little-endian, 32-bit relative
//! pointers, aligned). Everything a reader looks at is a flat array of primitives, so
//! a checked open costs O(number of arrays) plus the few enum tags and the lengths,
//! not O(nodes).
//!
//! Invariants (checked where they matter: by the view's accessors, which return
//! `None` on a bad index, and in full by the restore):
//! - `nodes.*` sequences are indexed by row and have `nodes.kid.len` entries;
//!   `kid[row] == NONE` marks a freed row;
//! - `nodes.child_start` has one more entry than there are rows and is non-decreasing;
//!   `children[child_start[r]..child_start[r + 1]]` are row `r`'s children in order;
//! - `nodes.by_key` lists the rows of all nodes sorted by key bytes;
//! - `columns[p]` is the column of path index `p`; its per-row arrays have
//!   `len` entries and bitmaps `len.div_ceil(64)` words;
//! - text and JSON cells, dynamic cells and `parts` are MessagePack, decoded only when
//!   read.

use rkyv::{Archive, Serialize};

pub use super::seq::{ArchivedU32s, U32s};

/// Marks a freed row in [`Nodes::kid`], and "none" in row references.
pub const NONE: u32 = u32::MAX;

/// The whole snapshot.
#[derive(Archive, Serialize, Debug, Default)]
pub struct Snap {
    /// Client names by client index (index 0 is the empty name).
    pub clients: Names,
    /// Node keys by key index (index 0 is `""`).
    pub keys: Names,
    /// Property paths by path index.
    pub paths: Names,
    /// The nodes, by row.
    pub nodes: Nodes,
    /// One column per path index.
    pub columns: Vec<Col>,
    /// The compaction bases.
    pub bases: Bases,
    /// The journaled messages (MessagePack, one per live journal entry).
    pub messages: Names,
    /// The replica's bookkeeping (MessagePack `ReplicaParts`).
    pub parts: Vec<u8>,
}

/// Strings (or byte strings) in one buffer: item `i` is `bytes[ends[i-1]..ends[i]]`.
#[derive(Archive, Serialize, Debug, Default)]
pub struct Names {
    /// The items, back to back.
    pub bytes: Vec<u8>,
    /// Where each item ends.
    pub ends: U32s,
}

/// The nodes, one entry per row.
#[derive(Archive, Serialize, Debug, Default)]
pub struct Nodes {
    /// Key index, or [`NONE`] for a freed row.
    pub kid: U32s,
    /// Tag strings.
    pub tags: Names,
    /// Per row: index into `tags`.
    pub tag: U32s,
    /// Name strings.
    pub names: Names,
    /// Per row: index into `names`.
    pub name: U32s,
    /// Parent row, or [`NONE`].
    pub parent: U32s,
    /// Where each row's children start in `children` (one more entry than rows).
    pub child_start: U32s,
    /// Child rows, in order.
    pub children: U32s,
    /// The stamps and wall clocks nodes were created at.
    pub created_at: Vec<Created>,
    /// Per row: index into `created_at`.
    pub created: U32s,
    /// Per row: the op index of the creating op.
    pub created_op: U32s,
    /// Tombstoned rows, ascending, with the position of the removing op.
    pub removed: Vec<Removed>,
    /// The root's row, or [`NONE`].
    pub root: u32,
    /// Every node's row, sorted by key bytes (for lookups by key).
    pub by_key: U32s,
}

/// A creation stamp and wall clock.
#[derive(Archive, Serialize, Debug, Clone, Copy, PartialEq, Default)]
pub struct Created {
    /// Lamport time.
    pub lt: u64,
    /// Wall clock (bits kept).
    pub ts: f64,
    /// Client index.
    pub client: u32,
}

/// A tombstone: the row and the position of the op that removed it.
#[derive(Archive, Serialize, Debug, Clone, Copy)]
pub struct Removed {
    /// Lamport time.
    pub lt: u64,
    /// Row.
    pub row: u32,
    /// Client index.
    pub client: u32,
    /// Op index.
    pub op: u32,
}

/// One path's cells.
#[derive(Archive, Serialize, Debug, Default)]
pub struct Col {
    /// Rows covered by the per-row arrays.
    pub len: u32,
    /// Bitmap: the typed column holds a cell at this row.
    pub present: Vec<u64>,
    /// The typed column's values (absent rows hold zeros).
    pub values: Values,
    /// The typed column's stamps.
    pub stamps: Stamps,
    /// Cells of another kind than the column's, by ascending row.
    pub dynamic: Vec<DynCell>,
}

/// The compaction bases, by *slot* (one per node key with a base).
#[derive(Archive, Serialize, Debug, Default)]
pub struct Bases {
    /// Key index of each slot.
    pub kids: U32s,
    /// One entry per path index.
    pub paths: Vec<BaseCol>,
}

/// The bases of one path.
#[derive(Archive, Serialize, Debug, Default)]
pub struct BaseCol {
    /// Bitmap over slots: the cell has a base.
    pub has: Vec<u64>,
    /// Bitmap over slots: the base is the node's current cell (value and stamp), so
    /// its value is not stored again.
    pub same: Vec<u64>,
    /// Number of the other bases.
    pub rest_len: u32,
    /// The slots of the other bases, ascending.
    pub rest_slots: U32s,
    /// Their values: row `i` is slot `rest_slots[i]`; an absent cell is a base
    /// "absent at the compaction point".
    pub rest: Col,
}

/// A typed column's values, one per row.
#[derive(Archive, Serialize, Debug, Default)]
pub enum Values {
    /// Nothing was ever written.
    #[default]
    Empty,
    /// Numbers.
    F64(Vec<f64>),
    /// 3-vectors.
    F32x3(Vec<[f32; 3]>),
    /// Quaternions.
    F32x4(Vec<[f32; 4]>),
    /// Packed colours.
    Rgb(Vec<u32>),
    /// Booleans (bitmap).
    Bool(Vec<u64>),
    /// Strings.
    Str(Names),
    /// JSON values (MessagePack).
    Json(Names),
    /// Texts: what each shows, and its CRDT (MessagePack value record).
    Text(Names, Names),
}

/// A typed column's stamps.
#[derive(Archive, Serialize, Debug)]
pub enum Stamps {
    /// Every row has this stamp `(lt, client)`.
    Same(u64, u32),
    /// Per row: Lamport times and client indices.
    Each(Vec<u64>, Vec<u32>),
}

impl Default for Stamps {
    fn default() -> Self {
        Stamps::Same(0, 0)
    }
}

/// A cell whose kind differs from its column's.
#[derive(Archive, Serialize, Debug)]
pub struct DynCell {
    /// Stamp's Lamport time.
    pub lt: u64,
    /// Row.
    pub row: u32,
    /// Stamp's client index.
    pub client: u32,
    /// The value (MessagePack value record).
    pub value: Vec<u8>,
}
