//! [`SnapshotView`]: reads a snapshot in place. Every accessor is a bounds-checked read
//! of the archive; a bad index (possible only in a crafted file that passed the
//! checksum) reads as absent, never as a panic.

use std::borrow::Cow;

use rkyv::vec::ArchivedVec;

use super::format::{
    ArchivedCol, ArchivedNames, ArchivedNodes, ArchivedSnap, ArchivedStamps, ArchivedValues, NONE,
};
use super::{FORMAT_VERSION, HEADER_LEN, SnapshotError, split_header};
use crate::column::{Rgb, ValueRef};
use crate::op::Json;
use crate::replica::parts::ValueRec;

impl ArchivedNames {
    /// Item `i`'s bytes.
    pub(super) fn item(&self, i: usize) -> Option<&[u8]> {
        let end = self.ends.at(i)? as usize;
        let start = match i {
            0 => 0,
            _ => self.ends.at(i - 1)? as usize,
        };
        self.bytes.get(start..end)
    }

    /// Item `i` as a string.
    pub(super) fn str(&self, i: usize) -> Option<&str> {
        std::str::from_utf8(self.item(i)?).ok()
    }

    /// Number of items.
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }
}

/// The indices of the set bits of a bitmap, ascending.
pub(super) fn set_bits(words: &[u64]) -> impl Iterator<Item = usize> + '_ {
    words.iter().enumerate().flat_map(|(w, &word)| {
        let mut bits = word;
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                w * 64 + b
            })
        })
    })
}

/// Bit `i` of a bitmap (false beyond its end).
pub(super) fn bit(words: &ArchivedVec<rkyv::Archived<u64>>, i: usize) -> bool {
    words
        .get(i / 64)
        .is_some_and(|w| w.to_native() >> (i % 64) & 1 == 1)
}

/// A snapshot opened in place.
#[derive(Clone, Copy)]
pub struct SnapshotView<'a> {
    snap: &'a ArchivedSnap,
    len: usize,
}

impl std::fmt::Debug for SnapshotView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotView")
            .field("bytes", &self.len)
            .field("nodes", &self.len())
            .finish()
    }
}

/// One node read from a [`SnapshotView`].
#[derive(Clone, Copy)]
pub struct NodeView<'a> {
    view: SnapshotView<'a>,
    row: usize,
}

impl std::fmt::Debug for NodeView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeView")
            .field("key", &self.key())
            .field("row", &self.row)
            .finish()
    }
}

/// A property value read from a snapshot: numbers, vectors and strings borrow from the
/// archive; JSON values and texts' CRDTs are decoded on read.
#[derive(Clone, Debug, PartialEq)]
pub enum PropRef<'a> {
    /// A number.
    Number(f64),
    /// A 3-vector.
    Vec3([f32; 3]),
    /// A quaternion.
    Quat([f32; 4]),
    /// A colour.
    Color(Rgb),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(&'a str),
    /// A JSON value (decoded).
    Json(Json),
    /// A collaborative text: what it shows.
    Text(&'a str),
}

impl PropRef<'_> {
    /// The value in the canonical JSON form (as [`ValueRef::to_json`]).
    pub fn to_json(&self) -> Json {
        match self {
            PropRef::Number(x) => ValueRef::Number(*x).to_json(),
            PropRef::Vec3(x) => ValueRef::Vec3(*x).to_json(),
            PropRef::Quat(x) => ValueRef::Quat(*x).to_json(),
            PropRef::Color(c) => ValueRef::Color(*c).to_json(),
            PropRef::Bool(b) => Json::Bool(*b),
            PropRef::Str(s) | PropRef::Text(s) => Json::String((*s).to_owned()),
            PropRef::Json(j) => j.clone(),
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            PropRef::Number(x) => Some(*x),
            _ => None,
        }
    }

    /// The 3-vector, if this is one.
    pub fn as_vec3(&self) -> Option<[f32; 3]> {
        match self {
            PropRef::Vec3(x) => Some(*x),
            _ => None,
        }
    }

    /// The string (or a text's shown string), if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PropRef::Str(s) | PropRef::Text(s) => Some(s),
            // A string or text held outside its column's kind is decoded, not borrowed.
            PropRef::Json(Json::String(s)) => Some(s),
            _ => None,
        }
    }
}

/// What `vuer-rtc snapshot inspect` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Format version of the file.
    pub version: u32,
    /// Total bytes, header included.
    pub bytes: usize,
    /// Nodes (tombstones included).
    pub nodes: usize,
    /// Tombstoned nodes.
    pub tombstones: usize,
    /// Interned keys, paths and clients.
    pub tables: [usize; 3],
    /// Journaled messages.
    pub messages: usize,
    /// One entry per path with a column.
    pub columns: Vec<ColumnInfo>,
    /// Bytes by section: header, node arrays, name tables, columns, compaction bases,
    /// journaled messages, bookkeeping, and the archive's own layout (pointers,
    /// lengths, padding); they add up to `bytes`.
    pub sections: Vec<(&'static str, usize)>,
}

/// One column in a [`SnapshotInfo`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnInfo {
    /// The path.
    pub path: String,
    /// The column's kind (`number`, `vector3`, …; `empty` when never written).
    pub kind: &'static str,
    /// Cells present in the typed column.
    pub cells: usize,
    /// Cells of another kind.
    pub dynamic: usize,
    /// True when every cell has the same stamp (stored once).
    pub same_stamp: bool,
    /// Bytes taken by the column's arrays.
    pub bytes: usize,
}

fn names_bytes(n: &ArchivedNames) -> usize {
    n.bytes.len() + n.ends.bytes()
}

fn col_bytes(c: &ArchivedCol) -> usize {
    let v = match &c.values {
        ArchivedValues::Empty => 0,
        ArchivedValues::F64(v) => 8 * v.len(),
        ArchivedValues::F32x3(v) => 12 * v.len(),
        ArchivedValues::F32x4(v) => 16 * v.len(),
        ArchivedValues::Rgb(v) => 4 * v.len(),
        ArchivedValues::Bool(v) => 8 * v.len(),
        ArchivedValues::Str(n) | ArchivedValues::Json(n) => names_bytes(n),
        ArchivedValues::Text(a, b) => names_bytes(a) + names_bytes(b),
    };
    let s = match &c.stamps {
        ArchivedStamps::Same(..) => 12,
        ArchivedStamps::Each(a, b) => 8 * a.len() + 4 * b.len(),
    };
    let d: usize = c.dynamic.iter().map(|d| 16 + d.value.len()).sum();
    v + s + d + 8 * c.present.len()
}

fn kind_name(v: &ArchivedValues) -> &'static str {
    match v {
        ArchivedValues::Empty => "empty",
        ArchivedValues::F64(_) => "number",
        ArchivedValues::F32x3(_) => "vector3",
        ArchivedValues::F32x4(_) => "quaternion",
        ArchivedValues::Rgb(_) => "color",
        ArchivedValues::Bool(_) => "boolean",
        ArchivedValues::Str(_) => "string",
        ArchivedValues::Json(_) => "json",
        ArchivedValues::Text(..) => "text",
    }
}

impl<'a> SnapshotView<'a> {
    /// Opens snapshot bytes with full validation: header (foreign file, future
    /// version, truncation), CRC32C of the archive, then rkyv's checked access (every
    /// pointer, length, enum tag and string in bounds and valid). Needs a 16-byte
    /// aligned buffer (a [`SnapshotBuf`](super::SnapshotBuf) or an mmap).
    ///
    /// # Errors
    /// [`SnapshotError`] saying what is wrong with the bytes.
    pub fn open(bytes: &'a [u8]) -> Result<SnapshotView<'a>, SnapshotError> {
        let (archive, crc) = split_header(bytes)?;
        let found = crc32c::crc32c(archive);
        if found != crc {
            return Err(SnapshotError::Checksum {
                expected: crc,
                found,
            });
        }
        let snap = rkyv::access::<ArchivedSnap, rkyv::rancor::Error>(archive)
            .map_err(|e| SnapshotError::Invalid(e.to_string()))?;
        // Lengths encoded compactly are not bounded by the archive's structure: a
        // crafted one must not make readers walk billions of rows.
        let n = &snap.nodes;
        let tables = [&snap.keys, &snap.paths, &snap.clients, &n.tags, &n.names];
        if let Some(t) = tables.iter().find(|t| t.len() > t.bytes.len() + 257) {
            return Err(SnapshotError::Invalid(format!(
                "a table of {} distinct names in {} bytes",
                t.len(),
                t.bytes.len()
            )));
        }
        if n.kid.len() > archive.len() || n.by_key.len() > n.kid.len() {
            return Err(SnapshotError::Invalid(format!(
                "{} rows ({} keyed) in a {}-byte archive",
                n.kid.len(),
                n.by_key.len(),
                archive.len()
            )));
        }
        // Children: every node has at most one parent, and each node's range of the
        // children list starts where the previous one's ends — otherwise crafted
        // ranges could make a walk of the tree list rows² children.
        if n.children.len() > n.kid.len() || n.child_start.len() > n.kid.len() + 1 {
            return Err(SnapshotError::Invalid(format!(
                "{} children and {} child ranges for {} rows",
                n.children.len(),
                n.child_start.len(),
                n.kid.len()
            )));
        }
        let mut prev = 0;
        for i in 0..n.child_start.len() {
            let at = n.child_start.at(i).unwrap_or(u32::MAX);
            if at < prev || at as usize > n.children.len() {
                return Err(SnapshotError::Invalid(format!(
                    "child range {i} starts at {at}, after {prev} (of {} children)",
                    n.children.len()
                )));
            }
            prev = at;
        }
        Ok(SnapshotView {
            snap,
            len: bytes.len(),
        })
    }

    /// Opens snapshot bytes checking only the header: O(1), for the trusted path.
    ///
    /// # Errors
    /// [`SnapshotError`] for a foreign, future-version, truncated or misaligned buffer.
    ///
    /// # Safety
    /// `bytes` must be exactly what [`Replica::snapshot`](crate::Replica::snapshot)
    /// returned in a build of this crate with the same format version, unchanged since
    /// (e.g. a file this process wrote and has checked with [`SnapshotView::open`]
    /// once, or whose integrity it otherwise guarantees). Damaged bytes are undefined
    /// behaviour here; use [`SnapshotView::open`] for anything else.
    #[allow(unsafe_code, reason = "the trusted O(1) open path; contract above")]
    pub unsafe fn open_unchecked(bytes: &'a [u8]) -> Result<SnapshotView<'a>, SnapshotError> {
        let (archive, _) = split_header(bytes)?;
        if archive.len() < std::mem::size_of::<ArchivedSnap>() {
            return Err(SnapshotError::Invalid(
                "archive shorter than its root".into(),
            ));
        }
        // SAFETY: the caller guarantees `archive` is an unmodified archive of
        // `ArchivedSnap` written by `Replica::snapshot` (header checked above: magic,
        // version, exact length, 16-byte alignment, room for the root).
        let snap = unsafe { rkyv::access_unchecked::<ArchivedSnap>(archive) };
        Ok(SnapshotView {
            snap,
            len: bytes.len(),
        })
    }

    /// Bytes of the whole snapshot, header included.
    pub(super) fn byte_len(&self) -> usize {
        self.len
    }

    pub(super) fn archived(&self) -> &'a ArchivedSnap {
        self.snap
    }

    fn nodes_arch(&self) -> &'a ArchivedNodes {
        &self.snap.nodes
    }

    /// Number of nodes, tombstones included.
    pub fn len(&self) -> usize {
        self.snap.nodes.by_key.len()
    }

    /// True when the scene has no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn node_at(&self, row: usize) -> Option<NodeView<'a>> {
        let kid = self.nodes_arch().kid.at(row)?;
        (kid != NONE).then_some(NodeView { view: *self, row })
    }

    /// The root: the first node ever created.
    pub fn root(&self) -> Option<NodeView<'a>> {
        let r = self.nodes_arch().root.to_native();
        if r == NONE {
            return None;
        }
        self.node_at(r as usize)
    }

    /// The node with this key (tombstones included): a binary search over the keys.
    pub fn node(&self, key: &str) -> Option<NodeView<'a>> {
        let n = self.nodes_arch();
        let key_of = |r: u32| -> &[u8] {
            n.kid
                .at(r as usize)
                .and_then(|k| self.snap.keys.item(k as usize))
                .unwrap_or(&[])
        };
        // Binary search over the rows sorted by key.
        let (mut lo, mut hi) = (0, n.by_key.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = n.by_key.at(mid)?;
            if key_of(r) < key.as_bytes() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let row = n.by_key.at(lo)?;
        (key_of(row) == key.as_bytes())
            .then(|| self.node_at(row as usize))
            .flatten()
    }

    /// Every node (tombstones included), in creation order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeView<'a>> + 'a {
        let v = *self;
        (0..self.nodes_arch().kid.len()).filter_map(move |r| v.node_at(r))
    }

    /// Every interned property path, by path index.
    pub fn paths(&self) -> impl Iterator<Item = &'a str> + 'a {
        let p = &self.snap.paths;
        (0..p.len()).map(move |i| p.str(i).unwrap_or(""))
    }

    fn column(&self, path: &str) -> Option<(usize, &'a ArchivedCol)> {
        let p = &self.snap.paths;
        let i = (0..p.len()).find(|&i| p.item(i) == Some(path.as_bytes()))?;
        Some((i, self.snap.columns.get(i)?))
    }

    /// Every present cell of a 3-vector column (e.g. `position`), with its node's
    /// row, in row order: a scan of one flat array.
    pub fn vec3_cells(&self, path: &str) -> impl Iterator<Item = (usize, [f32; 3])> + 'a {
        let col = self.column(path).map(|(_, c)| c);
        let values = col.and_then(|c| match &c.values {
            ArchivedValues::F32x3(v) => Some(v.as_slice()),
            _ => None,
        });
        values
            .into_iter()
            .flat_map(|v| v.iter().enumerate())
            .filter(move |(r, _)| col.is_some_and(|c| bit(&c.present, *r)))
            .map(|(r, x)| (r, [x[0].to_native(), x[1].to_native(), x[2].to_native()]))
    }

    /// The canonical state JSON, byte-identical to
    /// [`Replica::to_json`](crate::Replica::to_json) of the replica it was taken from.
    pub fn to_json(&self) -> String {
        self.to_json_value().to_string()
    }

    /// The canonical state as a JSON value.
    pub fn to_json_value(&self) -> Json {
        let mut nodes = serde_json::Map::new();
        for n in self.nodes() {
            nodes.insert(n.key().to_owned(), n.to_json());
        }
        let mut m = serde_json::Map::new();
        m.insert("nodes".into(), Json::Object(nodes));
        let root = self.root().map_or("", |r| r.key());
        m.insert("rootKey".into(), Json::String(root.to_owned()));
        Json::Object(m)
    }

    /// Format version, counts, columns and a size breakdown.
    pub fn info(&self) -> SnapshotInfo {
        let s = self.snap;
        let n = &s.nodes;
        let node_bytes = [&n.kid, &n.parent, &n.child_start, &n.children, &n.by_key]
            .iter()
            .map(|u| u.bytes())
            .sum::<usize>()
            + n.tag.bytes()
            + n.name.bytes()
            + n.created.bytes()
            + n.created_op.bytes()
            + 24 * (n.created_at.len() + n.removed.len())
            + names_bytes(&n.tags)
            + names_bytes(&n.names);
        let table_bytes = names_bytes(&s.clients) + names_bytes(&s.keys) + names_bytes(&s.paths);
        let columns: Vec<ColumnInfo> = s
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cells = c
                    .present
                    .iter()
                    .map(|w| w.to_native().count_ones() as usize);
                ColumnInfo {
                    path: s.paths.str(i).unwrap_or("").to_owned(),
                    kind: kind_name(&c.values),
                    cells: cells.sum(),
                    dynamic: c.dynamic.len(),
                    same_stamp: matches!(c.stamps, ArchivedStamps::Same(..)),
                    bytes: col_bytes(c),
                }
            })
            .collect();
        let col_total = columns.iter().map(|c| c.bytes).sum();
        SnapshotInfo {
            version: FORMAT_VERSION,
            bytes: self.len,
            nodes: self.len(),
            tombstones: n.removed.len(),
            tables: [s.keys.len(), s.paths.len(), s.clients.len()],
            messages: s.messages.len(),
            columns,
            sections: {
                let base_bytes = s.bases.kids.bytes()
                    + s.bases
                        .paths
                        .iter()
                        .map(|b| {
                            8 * (b.has.len() + b.same.len())
                                + b.rest_slots.bytes()
                                + col_bytes(&b.rest)
                        })
                        .sum::<usize>();
                let mut v = vec![
                    ("header", HEADER_LEN),
                    ("nodes", node_bytes),
                    ("tables", table_bytes),
                    ("columns", col_total),
                    ("bases", base_bytes),
                    ("journal", names_bytes(&s.messages)),
                    ("bookkeeping", s.parts.len()),
                ];
                let counted: usize = v.iter().map(|(_, b)| b).sum();
                // Relative pointers, lengths, enum tags and padding of the archive.
                v.push(("layout", self.len.saturating_sub(counted)));
                v
            },
        }
    }
}

impl<'a> NodeView<'a> {
    fn arch(&self) -> &'a ArchivedNodes {
        self.view.nodes_arch()
    }

    /// The node's row (its index in creation order, freed rows counted).
    pub fn row(&self) -> usize {
        self.row
    }

    /// The node's key.
    pub fn key(&self) -> &'a str {
        let kid = self.arch().kid.at(self.row).unwrap_or(0);
        self.view.snap.keys.str(kid as usize).unwrap_or("")
    }

    /// The node's tag.
    pub fn tag(&self) -> &'a str {
        let n = self.arch();
        n.tag
            .at(self.row)
            .and_then(|i| n.tags.str(i as usize))
            .unwrap_or("")
    }

    /// The node's name.
    pub fn name(&self) -> &'a str {
        let n = self.arch();
        n.name
            .at(self.row)
            .and_then(|i| n.names.str(i as usize))
            .unwrap_or("")
    }

    /// True for a tombstone.
    pub fn deleted(&self) -> bool {
        let removed = self.arch().removed.as_slice();
        let at = removed.partition_point(|r| (r.row.to_native() as usize) < self.row);
        removed
            .get(at)
            .is_some_and(|r| r.row.to_native() as usize == self.row)
    }

    /// The parent, if any.
    pub fn parent(&self) -> Option<NodeView<'a>> {
        let p = self.arch().parent.at(self.row)?;
        if p == NONE {
            return None;
        }
        self.view.node_at(p as usize)
    }

    /// The children, in order.
    pub fn children(&self) -> impl Iterator<Item = NodeView<'a>> + 'a {
        let n = self.arch();
        let start = n.child_start.at(self.row).unwrap_or(0) as usize;
        // A crafted range must not walk past the children that exist.
        let end = (n.child_start.at(self.row + 1).unwrap_or(0) as usize).min(n.children.len());
        let view = self.view;
        (start..end.max(start)).filter_map(move |i| view.node_at(n.children.at(i)? as usize))
    }

    /// The value of one property.
    pub fn get(&self, path: &str) -> Option<PropRef<'a>> {
        let (_, col) = self.view.column(path)?;
        cell(col, self.row)
    }

    /// Every property, by path index.
    pub fn properties(&self) -> impl Iterator<Item = (&'a str, PropRef<'a>)> + 'a {
        let s = self.view.snap;
        let row = self.row;
        s.columns.iter().enumerate().filter_map(move |(i, c)| {
            let v = cell(c, row)?;
            Some((s.paths.str(i).unwrap_or(""), v))
        })
    }

    /// The node in the canonical JSON form (as [`crate::NodeRef::to_json`]).
    pub fn to_json(&self) -> Json {
        let mut props = serde_json::Map::new();
        for (p, v) in self.properties() {
            props.insert(p.to_owned(), v.to_json());
        }
        let mut m = serde_json::Map::new();
        m.insert("tag".into(), Json::String(self.tag().into()));
        m.insert("name".into(), Json::String(self.name().into()));
        let children = self.children().map(|c| Json::String(c.key().into()));
        m.insert("children".into(), Json::Array(children.collect()));
        m.insert("deleted".into(), Json::Bool(self.deleted()));
        m.insert("properties".into(), Json::Object(props));
        Json::Object(m)
    }
}

/// The cell of `row` in a column, typed or dynamic.
fn cell(c: &ArchivedCol, row: usize) -> Option<PropRef<'_>> {
    if bit(&c.present, row) {
        let f3 = |x: &[rkyv::Archived<f32>; 3]| x.map(|v| v.to_native());
        let f4 = |x: &[rkyv::Archived<f32>; 4]| x.map(|v| v.to_native());
        return match &c.values {
            ArchivedValues::Empty => None,
            ArchivedValues::F64(v) => v.get(row).map(|x| PropRef::Number(x.to_native())),
            ArchivedValues::F32x3(v) => v.get(row).map(|x| PropRef::Vec3(f3(x))),
            ArchivedValues::F32x4(v) => v.get(row).map(|x| PropRef::Quat(f4(x))),
            ArchivedValues::Rgb(v) => v.get(row).map(|x| PropRef::Color(Rgb(x.to_native()))),
            ArchivedValues::Bool(v) => Some(PropRef::Bool(bit(v, row))),
            ArchivedValues::Str(n) => n.str(row).map(PropRef::Str),
            ArchivedValues::Json(n) => n
                .item(row)
                .and_then(|b| rmp_serde::from_slice::<Json>(b).ok())
                .map(PropRef::Json),
            ArchivedValues::Text(shown, _) => shown.str(row).map(PropRef::Text),
        };
    }
    let d = c.dynamic.as_slice();
    let at = d.partition_point(|x| (x.row.to_native() as usize) < row);
    let x = d.get(at).filter(|x| x.row.to_native() as usize == row)?;
    Some(match rmp_serde::from_slice::<ValueRec>(&x.value).ok()? {
        ValueRec::Number(v) => PropRef::Number(v),
        ValueRec::Vec3(v) => PropRef::Vec3(v),
        ValueRec::Quat(v) => PropRef::Quat(v),
        ValueRec::Color(v) => PropRef::Color(Rgb(v)),
        ValueRec::Bool(v) => PropRef::Bool(v),
        ValueRec::Str(s) => PropRef::Json(Json::String(s)),
        ValueRec::Json(j) => PropRef::Json(j),
        ValueRec::Text(parts, shown) => {
            let text = shown.map_or_else(|| visible(&parts), Cow::Owned);
            PropRef::Json(Json::String(text.into_owned()))
        }
    })
}

/// The text a text record shows when nothing is written over it.
fn visible(parts: &crate::text::TextParts) -> Cow<'static, str> {
    match crate::text::TextDoc::from_parts(parts.clone()) {
        Ok(doc) => Cow::Owned(doc.text()),
        Err(_) => Cow::Borrowed(""),
    }
}
