//! Archive → live [`Replica`]: the graph from the per-row arrays (slotmap keys are
//! handed out afresh, rows keep their numbers), then the bookkeeping through
//! [`Replica::from_parts`].
//!
//! Invariant: every index read from the archive is checked before use; an archive
//! that passed [`SnapshotView::open`] but does not describe a valid replica (a
//! crafted file) is refused with [`SnapshotError::Invalid`], never a panic.

use slotmap::SlotMap;

use super::format::{ArchivedCol, ArchivedNames, ArchivedStamps, ArchivedValues, NONE};
use super::view::bit;
use super::{SnapshotBuf, SnapshotError, SnapshotView};
use crate::Replica;
use crate::column::{Column, PathColumn, PropertyStore, Row, TypedColumn};
use crate::graph::Node;
use crate::graph::SceneGraph;
use crate::ids::{ClientId, ClientTable, KeyId, KeyTable, NodeKey, PathId, PathTable, Pos, Stamp};
use crate::op::{Json, Limits};
use crate::replica::parts::{ReplicaParts, ValueRec};
use crate::wire::{self, Format};

fn bad(msg: impl Into<String>) -> SnapshotError {
    SnapshotError::Invalid(msg.into())
}

fn strings(n: &ArchivedNames, what: &str) -> Result<Vec<Box<str>>, SnapshotError> {
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
    let rows = n.kid.len();
    let tags = strings(&n.tags, "tag")?;
    let names = strings(&n.names, "name")?;
    let per_row = |what: &str, len: usize| -> Result<(), SnapshotError> {
        if len == rows {
            Ok(())
        } else {
            Err(bad(format!("{what}: {len} entries for {rows} rows")))
        }
    };
    per_row("parents", n.parent.len())?;
    per_row("child starts", n.child_start.len().saturating_sub(1))?;
    let mut nodes: SlotMap<NodeKey, Node> = SlotMap::with_capacity_and_key(rows);
    let mut row_keys: Vec<Option<NodeKey>> = Vec::with_capacity(rows);
    let mut by_kid: Vec<Option<NodeKey>> = vec![None; keys.len()];
    let mut removed = n.removed.iter().peekable();
    for r in 0..rows {
        let kid = n.kid[r].to_native();
        if kid == NONE {
            row_keys.push(None);
            continue;
        }
        let key = keys.name(KeyId::from_index(kid));
        let slot = by_kid
            .get_mut(kid as usize)
            .ok_or_else(|| bad(format!("row {r}: key index {kid} out of range")))?;
        let text = |ids: &super::format::ArchivedIds, table: &[Box<str>], what: &str| {
            ids.at(r)
                .and_then(|i| table.get(i as usize))
                .map(|t| String::from(&**t))
                .ok_or_else(|| bad(format!("row {r}: {what} index out of range")))
        };
        let tag = text(&n.tag, &tags, "tag")?;
        let name = text(&n.name, &names, "name")?;
        let at = n
            .created
            .at(r)
            .and_then(|i| n.created_at.get(i as usize))
            .ok_or_else(|| bad(format!("row {r}: creation index out of range")))?;
        let op = n
            .created_op
            .at(r)
            .ok_or_else(|| bad(format!("row {r}: creation op missing")))?;
        let created = Pos {
            stamp: Stamp {
                lt: at.lt.to_native(),
                client: client(at.client.to_native())?,
            },
            op,
        };
        let gone = match removed.peek() {
            Some(x) if x.row.to_native() as usize == r => {
                let p = Pos {
                    stamp: Stamp {
                        lt: x.lt.to_native(),
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
        let (a, b) = (
            n.child_start[r].to_native(),
            n.child_start[r + 1].to_native(),
        );
        let kids = n
            .children
            .get(a as usize..b as usize)
            .ok_or_else(|| bad(format!("row {r}: children out of range")))?;
        if kids.is_empty() {
            continue;
        }
        let me = node(r as u32)?;
        let mut list = Vec::with_capacity(kids.len());
        for c in kids {
            let c = c.to_native();
            if n.parent.get(c as usize).map(|p| p.to_native()) != Some(r as u32) {
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
    let parented = n.parent.iter().filter(|p| p.to_native() != NONE).count();
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
            let p = n.parent[r].to_native();
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
    let mut implicit = Vec::new();
    for (i, c) in s.columns.iter().enumerate() {
        columns.push(column(c, &client, rows).map_err(|e| bad(format!("column {i}: {e}")))?);
        for r in 0..(c.base_current.len() * 64).min(rows) {
            if bit(&c.base_current, r) {
                implicit.push((PathId::from_index(i), Row(r as u32)));
            }
        }
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
    };

    // Bookkeeping and journal.
    let parts: ReplicaParts = rmp_serde::from_slice(&s.parts)
        .map_err(|e| bad(format!("bookkeeping does not decode: {e}")))?;
    let limits = Limits {
        max_ops_per_message: usize::MAX,
        max_string_bytes: usize::MAX,
        max_collection_len: usize::MAX,
        max_depth: 512,
    };
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
    Replica::from_parts(graph, parts, messages, implicit).map_err(SnapshotError::Invalid)
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
    if c.present.len() != words || c.base_current.len() > rows.div_ceil(64) {
        return Err("bitmap length does not match".into());
    }
    let present: Vec<bool> = (0..len).map(|r| bit(&c.present, r)).collect();
    let stamps: Vec<Stamp> = match &c.stamps {
        ArchivedStamps::Same(lt, cl) => {
            let s = Stamp {
                lt: lt.to_native(),
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
                        lt: lt.to_native(),
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
            lt: d.lt.to_native(),
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
