//! The journal: every message a replica holds (uncompacted), and the undo state.
//!
//! Invariants:
//! - `entries[by_id[id]].msg.id == id`; an id appears at most once;
//! - no two entries share a stamp `(lt, client)` (a second message with a used stamp is
//!   rejected: the total order would be ambiguous);
//! - `entries[i].undone` ⇔ the newest meta op (by position) targeting `entries[i]` is a
//!   `meta.undo` (the undo rule of DESIGN.md §4), kept up to date by [`Journal::note_meta`];
//! - entries are never reordered: an [`OpRef`] stays valid for the journal's lifetime.

use ahash::AHashMap;

use crate::ids::{ClientTable, KeyId, PathId, Pos, Stamp};
use crate::op::{Message, Op, OpKind};

/// A reference to one op of one journaled message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpRef {
    /// Index of the message in the journal.
    pub msg: u32,
    /// Index of the op inside the message.
    pub op: u32,
}

/// One journaled message.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The message.
    pub msg: Message,
    /// Its interned stamp.
    pub stamp: Stamp,
    /// True while the message is undone.
    pub undone: bool,
    /// Per op: the interned target key (for property ops; [`KeyId::ROOT`] for the root
    /// keys, the new node's key for `node.insert`-likes) and the interned `path`.
    pub ids: Vec<(KeyId, PathId)>,
}

/// The newest meta op seen for one target id.
#[derive(Clone, Copy, Debug)]
struct MetaState {
    pos: Pos,
    undo: bool,
}

/// Every uncompacted message, by arrival, with an id index and the undo state.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    pub(crate) entries: Vec<Entry>,
    by_id: AHashMap<Box<str>, u32>,
    by_stamp: AHashMap<Stamp, u32>,
    meta: AHashMap<Box<str>, MetaState>,
}

impl Journal {
    /// Number of journaled messages.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the journal is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when a message with this id is journaled.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// The id of the journaled message with this stamp, if any.
    pub fn id_at(&self, stamp: Stamp) -> Option<&str> {
        self.by_stamp
            .get(&stamp)
            .map(|&i| self.entries[i as usize].msg.id.as_str())
    }

    /// The entry at `i`.
    pub fn entry(&self, i: u32) -> &Entry {
        &self.entries[i as usize]
    }

    /// The op behind a reference.
    pub fn op(&self, r: OpRef) -> &Op {
        &self.entries[r.msg as usize].msg.ops[r.op as usize]
    }

    /// The position of a referenced op.
    pub fn pos(&self, r: OpRef) -> Pos {
        Pos {
            stamp: self.entries[r.msg as usize].stamp,
            op: r.op,
        }
    }

    /// True when the referenced op's message is undone.
    pub fn is_undone(&self, r: OpRef) -> bool {
        self.entries[r.msg as usize].undone
    }

    /// The interned target key and path of a referenced op.
    pub fn ids(&self, r: OpRef) -> (KeyId, PathId) {
        self.entries[r.msg as usize].ids[r.op as usize]
    }

    /// Appends a message (the caller checked id and stamp are new) with the interned
    /// ids of its ops. Its undo state comes from the meta ops seen so far.
    pub fn push(&mut self, msg: Message, stamp: Stamp, ids: Vec<(KeyId, PathId)>) -> u32 {
        let i = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        let undone = self.meta.get(msg.id.as_str()).is_some_and(|m| m.undo);
        self.by_id.insert(msg.id.as_str().into(), i);
        self.by_stamp.insert(stamp, i);
        self.entries.push(Entry {
            msg,
            stamp,
            undone,
            ids,
        });
        i
    }

    /// Records the meta ops of a message at `stamp`. Returns the journaled targets whose
    /// undo state flipped (their entries are already updated).
    pub fn note_meta(&mut self, msg: &Message, stamp: Stamp, clients: &ClientTable) -> Vec<u32> {
        let mut flipped = Vec::new();
        for (i, op) in msg.ops.iter().enumerate() {
            let (target, undo) = match &op.kind {
                OpKind::MetaUndo { target } => (target, true),
                OpKind::MetaRedo { target } => (target, false),
                _ => continue,
            };
            let pos = Pos::new(stamp, i);
            let newer = self
                .meta
                .get(target.as_str())
                .is_none_or(|m| clients.cmp_pos(pos, m.pos).is_gt());
            if !newer {
                continue;
            }
            self.meta
                .insert(target.as_str().into(), MetaState { pos, undo });
            if let Some(&t) = self.by_id.get(target.as_str()) {
                let e = &mut self.entries[t as usize];
                if e.undone != undo {
                    e.undone = undo;
                    if let Some(k) = flipped.iter().position(|&x| x == t) {
                        // Flipped back within the same message: no net change.
                        flipped.swap_remove(k);
                    } else {
                        flipped.push(t);
                    }
                }
            }
        }
        flipped
    }
}
