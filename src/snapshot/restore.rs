//! Archive → live [`Replica`]: the graph from the per-row arrays (slotmap keys are
//! handed out afresh, rows keep their numbers), then the bookkeeping through
//! [`Replica::from_parts`].
//!
//! Invariant: every index read from the archive is checked before use; an archive
//! that passed [`SnapshotView::open`] but does not describe a valid replica (a
//! crafted file) is refused with [`SnapshotError::Invalid`], never a panic.

use slotmap::SlotMap;

use super::format::{
    ArchivedBases, ArchivedCol, ArchivedNames, ArchivedStamps, ArchivedU32s, ArchivedValues, NONE,
};
use super::view::{bit, set_bits};
use super::{SnapshotBuf, SnapshotError, SnapshotView};
use crate::Replica;
use crate::column::{Column, PathColumn, PropertyStore, Row, TypedColumn};
use crate::graph::Node;
use crate::graph::SceneGraph;
use crate::ids::{ClientId, ClientTable, KeyId, KeyTable, NodeKey, PathId, PathTable, Pos, Stamp};
use crate::op::{Json, Limits};
use crate::replica::bases::BaseStore;
use crate::replica::parts::{ReplicaParts, ValueRec};
use crate::wire::{self, Format};

fn bad(msg: impl Into<String>) -> SnapshotError {
    SnapshotError::Invalid(msg.into())
}

/// A Lamport time from the archive, held to the wire's bound (`ids::MAX_SAFE_INT`).
fn checked_lt(lt: u64) -> Result<u64, String> {
    if lt <= crate::ids::MAX_SAFE_INT {
        Ok(lt)
    } else {
        Err(format!("Lamport time {lt} is beyond 2^53 − 1"))
    }
}

/// The strings of a table of distinct names (a crafted count cannot exceed what the
/// bytes can hold: n distinct strings take at least n - 257 bytes).
fn strings(n: &ArchivedNames, what: &str) -> Result<Vec<Box<str>>, SnapshotError> {
    if n.len() > n.bytes.len() + 257 {
        return Err(bad(format!(
            "{} {what}s in {} bytes",
            n.len(),
            n.bytes.len()
        )));
    }
    (0..n.len())
        .map(|i| {
            n.str(i)
                .map(Box::from)
                .ok_or_else(|| bad(format!("{what} {i} is not UTF-8 or out of bounds")))
        })
        .collect()
}

impl Replica {
    /// Restores a replica from snapshot bytes (opened with full validation; a
    /// misaligned buffer is copied first). The restored replica equals the original:
    /// same state, clock, journal, and the same answers to every later message.
    ///
    /// # Errors
    /// [`SnapshotError`] for a foreign, future-version, truncated, corrupted or
    /// invalid snapshot.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Replica, SnapshotError> {
        if bytes.as_ptr().align_offset(16) != 0 {
            let copy = SnapshotBuf::from_bytes(bytes);
            return restore(SnapshotView::open(&copy)?);
        }
        restore(SnapshotView::open(bytes)?)
    }
}

/// Rebuilds the replica behind an opened view.
pub(super) fn restore(view: SnapshotView<'_>) -> Result<Replica, SnapshotError> {
    let s = view.archived();
    let clients = ClientTable::from_names(strings(&s.clients, "client name")?)
        .ok_or_else(|| bad("client table: first name not empty, or a name repeats"))?;
    let keys = KeyTable::from_names(strings(&s.keys, "key")?)
        .ok_or_else(|| bad("key table: first key not empty, or a key repeats"))?;
    let paths = PathTable::from_names(strings(&s.paths, "path")?)
        .ok_or_else(|| bad("path table: a path repeats"))?;
    let n_clients = clients.len() as u32;
    let client = |c: u32| -> Result<ClientId, SnapshotError> {
        if c < n_clients {
            Ok(ClientId::from_index(c))
        } else {
            Err(bad(format!("client index {c} out of range")))
        }
    };

    // Nodes.
    let n = &s.nodes;
    // Every live row has its own key; freed rows are rare: rows cannot outnumber the
    // archive's bytes.
    let kids = n
        .kid
        .to_vec(view.byte_len())
        .ok_or_else(|| bad("node keys: malformed sequence or too many rows"))?;
    let rows = kids.len();
    let tags = strings(&n.tags, "tag")?;
    let names = strings(&n.names, "name")?;
    // Every per-row sequence, decoded and checked for length.
    let per_row = |u: &ArchivedU32s, what: &str, extra: usize| -> Result<Vec<u32>, SnapshotError> {
        if u.len() != rows + extra {
            return Err(bad(format!("{what}: {} entries for {rows} rows", u.len())));
        }
        u.to_vec(rows + extra)
            .ok_or_else(|| bad(format!("{what}: malformed sequence")))
    };
    let tag_ix = per_row(&n.tag, "tags", 0)?;
    let name_ix = per_row(&n.name, "names", 0)?;
    let parents = per_row(&n.parent, "parents", 0)?;
    let child_start = per_row(&n.child_start, "child starts", 1)?;
    let created_ix = per_row(&n.created, "creation stamps", 0)?;
    let created_ops = per_row(&n.created_op, "creation ops", 0)?;
    let children = n
        .children
        .to_vec(rows)
        .ok_or_else(|| bad("children: malformed sequence"))?;
    let mut nodes: SlotMap<NodeKey, Node> = SlotMap::with_capacity_and_key(rows);
    let mut row_keys: Vec<Option<NodeKey>> = Vec::with_capacity(rows);
    let mut by_kid: Vec<Option<NodeKey>> = vec![None; keys.len()];
    let mut removed = n.removed.iter().peekable();
    for r in 0..rows {
        let kid = kids[r];
        if kid == NONE {
            row_keys.push(None);
            continue;
        }
        let key = keys.name(KeyId::from_index(kid));
        let slot = by_kid
            .get_mut(kid as usize)
            .ok_or_else(|| bad(format!("row {r}: key index {kid} out of range")))?;
        let text = |i: u32, table: &[Box<str>], what: &str| {
            table
                .get(i as usize)
                .map(|t| String::from(&**t))
                .ok_or_else(|| bad(format!("row {r}: {what} index out of range")))
        };
        let tag = text(tag_ix[r], &tags, "tag")?;
        let name = text(name_ix[r], &names, "name")?;
        let at = n
            .created_at
            .get(created_ix[r] as usize)
            .ok_or_else(|| bad(format!("row {r}: creation index out of range")))?;
        let op = created_ops[r];
        let created = Pos {
            stamp: Stamp {
                lt: checked_lt(at.lt.to_native()).map_err(bad)?,
                client: client(at.client.to_native())?,
            },
            op,
        };
        let gone = match removed.peek() {
            Some(x) if x.row.to_native() as usize == r => {
                let p = Pos {
                    stamp: Stamp {
                        lt: checked_lt(x.lt.to_native()).map_err(bad)?,
                        client: client(x.client.to_native())?,
                    },
                    op: x.op.to_native(),
                };
                removed.next();
                Some(p)
            }
            _ => None,
        };
        let id = nodes.insert(Node {
            key: key.into(),
            kid: KeyId::from_index(kid),
            tag,
            name,
            parent: None,
            children: Vec::new(),
            removed: gone,
            created_ts: at.ts.to_native(),
            created,
            row: Row(r as u32),
        });
        if slot.replace(id).is_some() {
            return Err(bad(format!("row {r}: key {key:?} used by two nodes")));
        }
        row_keys.push(Some(id));
    }
    if removed.next().is_some() {
        return Err(bad("tombstones not ascending or on freed rows"));
    }
    let node = |row: u32| -> Result<NodeKey, SnapshotError> {
        row_keys
            .get(row as usize)
            .copied()
            .flatten()
            .ok_or_else(|| bad(format!("row {row} names no node")))
    };
    // Hierarchy: children lists, each child's parent must name the list it is in.
    let mut listed = 0usize;
    let mut seen = vec![false; rows];
    for r in 0..rows {
        let (a, b) = (child_start[r], child_start[r + 1]);
        let kids = children
            .get(a as usize..b as usize)
            .ok_or_else(|| bad(format!("row {r}: children out of range")))?;
        if kids.is_empty() {
            continue;
        }
        let me = node(r as u32)?;
        let mut list = Vec::with_capacity(kids.len());
        for &c in kids {
            if parents.get(c as usize) != Some(&(r as u32)) {
                return Err(bad(format!(
                    "row {c} listed as a child of row {r}, not its parent"
                )));
            }
            let ck = node(c)?;
            if std::mem::replace(&mut seen[c as usize], true) {
                return Err(bad(format!("row {c} listed as a child twice")));
            }
            nodes[ck].parent = Some(me);
            list.push(ck);
        }
        listed += list.len();
        nodes[me].children = list;
    }
    let parented = parents.iter().filter(|&&p| p != NONE).count();
    if listed != parented {
        return Err(bad("a node's parent does not list it as a child"));
    }
    // No cycles: walk up from every node, marking finished rows.
    let mut state = vec![0u8; rows]; // 0 = unseen, 1 = on the current walk, 2 = done
    for start in 0..rows {
        let mut r = start;
        let mut walk = Vec::new();
        while state[r] == 0 {
            state[r] = 1;
            walk.push(r);
            let p = parents[r];
            if p == NONE {
                break;
            }
            r = p as usize;
            if r >= rows {
                return Err(bad("parent row out of range"));
            }
            if state[r] == 1 {
                return Err(bad(format!("the parent links of row {r} form a cycle")));
            }
        }
        for w in walk {
            state[w] = 2;
        }
    }
    let root = match n.root.to_native() {
        NONE => None,
        r => Some(node(r)?),
    };

    // Columns.
    if s.columns.len() > paths.len() {
        return Err(bad("more columns than paths"));
    }
    let mut columns = Vec::with_capacity(s.columns.len());
    for (i, c) in s.columns.iter().enumerate() {
        columns.push(column(c, &client, rows).map_err(|e| bad(format!("column {i}: {e}")))?);
    }
    let graph = SceneGraph {
        nodes,
        keys,
        by_kid,
        rows: row_keys,
        root,
        paths,
        clients,
        props: PropertyStore::from_columns(columns),
        dirty_nodes: Default::default(),
    };

    // Bookkeeping and journal.
    let parts: ReplicaParts = rmp_serde::from_slice(&s.parts)
        .map_err(|e| bad(format!("bookkeeping does not decode: {e}")))?;
    let limits = Limits {
        max_ops_per_message: usize::MAX,
        max_string_bytes: usize::MAX,
        max_collection_len: usize::MAX,
        max_depth: 512,
        max_message_bytes: usize::MAX,
    };
    if s.messages.len() > s.messages.bytes.len() {
        return Err(bad("more journal messages than bytes"));
    }
    let messages = (0..s.messages.len())
        .map(|i| {
            let b = s
                .messages
                .item(i)
                .ok_or_else(|| bad(format!("message {i} out of bounds")))?;
            wire::decode_message(b, Format::MessagePack, &limits)
                .map_err(|e| bad(format!("journal message {i}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bases = bases(&s.bases, &graph, &client).map_err(|e| bad(format!("bases: {e}")))?;
    Replica::from_parts(graph, parts, messages, bases).map_err(SnapshotError::Invalid)
}

/// The compaction bases: `same` slots take the node's current cell from `graph`.
fn bases(
    b: &ArchivedBases,
    graph: &SceneGraph,
    client: &impl Fn(u32) -> Result<ClientId, SnapshotError>,
) -> Result<BaseStore, String> {
    let n_keys = graph.keys.len();
    let kids = b
        .kids
        .to_vec(n_keys)
        .ok_or("malformed key sequence, or more slots than keys")?;
    let kid_of = kids
        .iter()
        .map(|&k| {
            if (k as usize) < n_keys {
                Ok(KeyId::from_index(k))
            } else {
                Err(format!("key index {k} out of range"))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let slot_rows: Vec<Option<Row>> = kid_of
        .iter()
        .map(|&k| graph.node_of(k).map(|n| graph.nodes[n].row))
        .collect();
    if b.paths.len() > graph.paths.len() {
        return Err("more base columns than paths".into());
    }
    let words = kid_of.len().div_ceil(64);
    let mut has_all = Vec::with_capacity(b.paths.len());
    let mut cols = Vec::with_capacity(b.paths.len());
    for (p, bc) in b.paths.iter().enumerate() {
        let pid = PathId::from_index(p);
        let has: Vec<u64> = bc.has.iter().map(|w| w.to_native()).collect();
        let same: Vec<u64> = bc.same.iter().map(|w| w.to_native()).collect();
        if has.len() > words || same.len() > has.len() {
            return Err(format!("path {p}: bitmap lengths"));
        }
        if same.iter().zip(&has).any(|(s, h)| s & !h != 0) {
            return Err(format!("path {p}: a base marked current has no base"));
        }
        let rest_slots = bc
            .rest_slots
            .to_vec(kid_of.len())
            .ok_or("malformed slot sequence")?;
        if rest_slots.len() != bc.rest_len.to_native() as usize {
            return Err(format!("path {p}: rest length"));
        }
        let rest = column(&bc.rest, client, rest_slots.len())?;
        // Current bases: gathered from the graph's typed column in one pass (the few
        // in its dynamic map are set one by one); the others come from `rest`.
        let graph_col = graph.props.path(pid);
        let mut from: Vec<Option<Row>> = vec![None; kid_of.len()];
        let mut one_by_one = Vec::new();
        let mut rest_cells = Vec::new();
        let mut next = 0usize;
        for slot in set_bits(&has) {
            if same
                .get(slot / 64)
                .is_some_and(|s| s >> (slot % 64) & 1 == 1)
            {
                let row =
                    slot_rows.get(slot).copied().flatten().ok_or_else(|| {
                        format!("path {p}: current base of slot {slot} has no node")
                    })?;
                let col = graph_col.ok_or_else(|| format!("path {p}: no column"))?;
                if col.primary().get(row).is_some() {
                    from[slot] = Some(row);
                } else {
                    let (v, st) = col.get(row).ok_or_else(|| {
                        format!("path {p}: current base of slot {slot} has no cell")
                    })?;
                    one_by_one.push((Row(slot as u32), v.to_owned(), st));
                }
            } else {
                if rest_slots.get(next) != Some(&(slot as u32)) {
                    return Err(format!("path {p}: base slots do not match"));
                }
                if let Some((v, st)) = rest.get(Row(next as u32)) {
                    rest_cells.push((Row(slot as u32), v.to_owned(), st));
                }
                next += 1;
            }
        }
        let primary = graph_col.map_or(TypedColumn::Empty, |c| c.primary().gather(&from));
        let mut out = PathColumn::from_parts(primary, ahash::AHashMap::new())
            .ok_or("a gathered column clashes")?;
        for (slot, v, st) in one_by_one.into_iter().chain(rest_cells) {
            out.set(slot, v, st);
        }
        if next != rest_slots.len() {
            return Err(format!("path {p}: base slots do not match"));
        }
        has_all.push(has);
        cols.push(out);
    }
    BaseStore::from_parts(kid_of, has_all, PropertyStore::from_columns(cols), n_keys)
}

/// One path column from its archived arrays.
fn column(
    c: &ArchivedCol,
    client: &impl Fn(u32) -> Result<ClientId, SnapshotError>,
    rows: usize,
) -> Result<PathColumn, String> {
    let len = c.len.to_native() as usize;
    if len > rows {
        return Err(format!("{len} cells for {rows} rows"));
    }
    let words = len.div_ceil(64);
    if c.present.len() != words {
        return Err("bitmap length does not match".into());
    }
    let present: Vec<bool> = (0..len).map(|r| bit(&c.present, r)).collect();
    let stamps: Vec<Stamp> = match &c.stamps {
        ArchivedStamps::Same(lt, cl) => {
            let s = Stamp {
                lt: checked_lt(lt.to_native())?,
                client: client(cl.to_native()).map_err(|e| e.to_string())?,
            };
            present
                .iter()
                .map(|&p| if p { s } else { Stamp::ZERO })
                .collect()
        }
        ArchivedStamps::Each(lts, cls) => {
            if lts.len() != len || cls.len() != len {
                return Err("stamp arrays do not match the column length".into());
            }
            lts.iter()
                .zip(cls.iter())
                .map(|(lt, cl)| {
                    Ok(Stamp {
                        lt: checked_lt(lt.to_native())?,
                        client: client(cl.to_native()).map_err(|e| e.to_string())?,
                    })
                })
                .collect::<Result<_, String>>()?
        }
    };
    fn build<T: Default>(
        values: Vec<T>,
        stamps: Vec<Stamp>,
        present: Vec<bool>,
    ) -> Result<Column<T>, String> {
        Column::from_parts(values, stamps, present)
            .ok_or_else(|| "array lengths differ".to_string())
    }
    let names = |n: &ArchivedNames| -> Result<(), String> {
        (n.len() == len)
            .then_some(())
            .ok_or_else(|| "string count differs".to_string())
    };
    let primary = match &c.values {
        ArchivedValues::Empty => {
            if present.iter().any(|&p| p) {
                return Err("cells in an empty column".into());
            }
            TypedColumn::Empty
        }
        ArchivedValues::F64(v) => TypedColumn::F64(build(
            v.iter().map(|x| x.to_native()).collect(),
            stamps,
            present,
        )?),
        ArchivedValues::F32x3(v) => TypedColumn::F32x3(build(
            v.iter().map(|x| x.map(|f| f.to_native())).collect(),
            stamps,
            present,
        )?),
        ArchivedValues::F32x4(v) => TypedColumn::F32x4(build(
            v.iter().map(|x| x.map(|f| f.to_native())).collect(),
            stamps,
            present,
        )?),
        ArchivedValues::Rgb(v) => TypedColumn::Rgb(build(
            v.iter().map(|x| x.to_native() & 0x00ff_ffff).collect(),
            stamps,
            present,
        )?),
        ArchivedValues::Bool(v) => {
            if v.len() != words {
                return Err("boolean bitmap length does not match".into());
            }
            TypedColumn::Bool(build(
                (0..len).map(|r| bit(v, r)).collect(),
                stamps,
                present,
            )?)
        }
        ArchivedValues::Str(n) => {
            names(n)?;
            let v = (0..len)
                .map(|r| n.str(r).map(String::from).ok_or("string is not UTF-8"))
                .collect::<Result<Vec<_>, _>>()?;
            TypedColumn::Str(build(v, stamps, present)?)
        }
        ArchivedValues::Json(n) => {
            names(n)?;
            let v = (0..len)
                .map(|r| match n.item(r) {
                    Some([]) if !present[r] => Ok(Json::Null),
                    Some(b) => rmp_serde::from_slice::<Json>(b).map_err(|e| e.to_string()),
                    None => Err("JSON cell out of bounds".into()),
                })
                .collect::<Result<Vec<_>, String>>()?;
            TypedColumn::Json(build(v, stamps, present)?)
        }
        ArchivedValues::Text(_, docs) => {
            names(docs)?;
            let v = (0..len)
                .map(|r| {
                    if !present[r] {
                        return Ok(Box::default());
                    }
                    let b = docs.item(r).ok_or("text cell out of bounds")?;
                    let rec: ValueRec = rmp_serde::from_slice(b).map_err(|e| e.to_string())?;
                    match rec.into_value()? {
                        crate::column::Value::Text(t) => Ok(t),
                        _ => Err("text column holds another kind".to_string()),
                    }
                })
                .collect::<Result<Vec<_>, String>>()?;
            TypedColumn::Text(build(v, stamps, present)?)
        }
    };
    let mut dynamic = ahash::AHashMap::with_capacity(c.dynamic.len());
    for d in c.dynamic.iter() {
        let row = d.row.to_native();
        if row as usize >= rows {
            return Err(format!("dynamic cell at row {row} out of range"));
        }
        let rec: ValueRec = rmp_serde::from_slice(&d.value).map_err(|e| e.to_string())?;
        let stamp = Stamp {
            lt: checked_lt(d.lt.to_native())?,
            client: client(d.client.to_native()).map_err(|e| e.to_string())?,
        };
        if dynamic
            .insert(Row(row), (rec.into_value()?, stamp))
            .is_some()
        {
            return Err(format!("dynamic cell at row {row} repeated"));
        }
    }
    PathColumn::from_parts(primary, dynamic)
        .ok_or_else(|| "a cell is both typed and dynamic".into())
}
