//! Identities shared by every stage: clients, stamps, paths and nodes.
//!
//! Owns the local, compact stand-ins for the strings that travel on the wire:
//!
//! - [`ClientId`]: a client name interned in a [`ClientTable`];
//! - [`Stamp`]: the `(lt, client)` pair that totally orders messages (DESIGN.md §4);
//! - [`PathId`]: a property path interned in a [`PathTable`];
//! - [`NodeKey`]: the slotmap key of a node. It never leaves the process; the
//!   node's key *string* is what goes on the wire.
//!
//! Invariants:
//! - `table.name(table.intern(s)) == s` for both tables, and interning the same string
//!   twice gives the same id.
//! - [`ClientId::NONE`] is never handed out by [`ClientTable::intern`]; it orders before
//!   every real client, so [`Stamp::ZERO`] orders before every real stamp.
//! - Stamps order by `lt`, then by the client *string* (byte-wise), never by the
//!   numeric id: ids are handed out in arrival order, which differs between replicas.
//!
//! Nothing here knows about operations, columns or the graph. Read [`crate::op`] next.

use std::cmp::Ordering;

use ahash::AHashMap;

/// The largest integer accepted from outside: 2^53 − 1, the largest that every client
/// language (JavaScript included) represents exactly. Every integer a message carries
/// (`lt`, `clock` counters, text `seq`, positions, lengths and indices) is within
/// `±MAX_SAFE_INT`, checked at decode (`crate::wire`, `crate::op::parse`); text
/// character ids are 32-bit counters and an insert's or a deleted range's ids
/// (`seq + length`) must fit in them. So every [`Stamp::lt`] is at most this.
pub const MAX_SAFE_INT: u64 = (1 << 53) - 1;

slotmap::new_key_type! {
    /// The arena key of a node. Local to one process: never put it on the wire.
    pub struct NodeKey;
}

/// A Lamport time, as carried by a message's `lt` field.
pub type Lamport = u64;

/// A client (replica) name interned in a [`ClientTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ClientId(u32);

impl ClientId {
    /// The "no client" id, used by [`Stamp::ZERO`]: orders before every client.
    pub const NONE: ClientId = ClientId(0);

    /// The id at a table index (the caller checked the index is in the table).
    pub(crate) fn from_index(i: u32) -> ClientId {
        ClientId(i)
    }

    /// The index of this id in its table.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A string interner: `names[ids[s]] == s`, indices handed out densely from 0.
#[derive(Clone, Debug, Default)]
pub(crate) struct Interner {
    names: Vec<Box<str>>,
    ids: AHashMap<Box<str>, u32>,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    /// An interner holding `names` at their indices; `None` when a name repeats.
    pub(crate) fn from_names(names: Vec<Box<str>>) -> Option<Interner> {
        let mut ids = AHashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            if ids.insert(n.clone(), u32::try_from(i).ok()?).is_some() {
                return None;
            }
        }
        Some(Interner { names, ids })
    }

    pub(crate) fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    pub(crate) fn name(&self, i: usize) -> &str {
        self.names.get(i).map_or("", |s| s)
    }

    /// Every name, by id.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.names.iter().map(|s| &**s)
    }

    /// Number of names.
    pub(crate) fn count(&self) -> usize {
        self.names.len()
    }
}

/// Interns client names. Index 0 is reserved for [`ClientId::NONE`] (the empty name).
///
/// Keeps `label[id]`, a number whose order is the names' byte order, so comparing two
/// stamps never compares strings. A new name takes the midpoint between the labels of
/// its neighbours in name order; only when they are adjacent are all labels spread out
/// again (evenly over the `u64` range), so a new client costs a binary search and a
/// shift of the id list, not a pass over every client's label (10,000 clients that
/// each appear once used to cost 10^8 label updates). Labels are never stored
/// elsewhere.
#[derive(Clone, Debug)]
pub struct ClientTable {
    names: Interner,
    // label[a] < label[b] ⇔ name(a) < name(b); label[NONE] == 0.
    label: Vec<u64>,
    // The ids in name order: label[by_name[i]] increases with i; by_name[0] == NONE.
    by_name: Vec<u32>,
}

impl Default for ClientTable {
    fn default() -> Self {
        let mut names = Interner::default();
        names.names.push("".into());
        Self {
            names,
            label: vec![0],
            by_name: vec![0],
        }
    }
}

impl ClientTable {
    /// The id of `name`, interning it on first sight.
    pub fn intern(&mut self, name: &str) -> ClientId {
        let before = self.names.names.len();
        let id = self.names.intern(name);
        if self.names.names.len() != before {
            self.place_newest();
        }
        ClientId(id)
    }

    /// Gives the newest interned name its label: a binary search for its place in the
    /// ids kept in name order, the midpoint of its neighbours' labels, and a relabel of
    /// everything only when they leave no room.
    fn place_newest(&mut self) {
        let new = self.names.names.len() - 1;
        let names = &self.names.names;
        // The empty name (NONE, label 0) sorts first; every other name after it.
        let at = self
            .by_name
            .partition_point(|&id| names[id as usize] < names[new])
            .max(1);
        self.by_name
            .insert(at, u32::try_from(new).unwrap_or(u32::MAX));
        self.label.push(0);
        let prev = self.label[self.by_name[at - 1] as usize];
        let next = self
            .by_name
            .get(at + 1)
            .map_or(u64::MAX, |&id| self.label[id as usize]);
        if next - prev >= 2 {
            self.label[new] = prev + (next - prev) / 2;
        } else {
            self.relabel();
        }
    }

    /// Spreads the labels evenly over the `u64` range, in name order.
    fn relabel(&mut self) {
        let step = u64::MAX / (self.by_name.len() as u64 + 1);
        for (i, &id) in self.by_name.iter().enumerate() {
            self.label[id as usize] = step * i as u64;
        }
    }

    /// A table holding `names` at their ids (`names[0]` must be the empty name of
    /// [`ClientId::NONE`], and no name may repeat); labels are recomputed.
    pub(crate) fn from_names(mut names: Vec<Box<str>>) -> Option<ClientTable> {
        if names.first().is_none_or(|n| !n.is_empty()) {
            return None;
        }
        let rest = names.split_off(1);
        let mut interner = Interner::from_names(rest)?;
        // Index 0 is the empty name and stays out of the lookup map.
        interner.names.insert(0, "".into());
        for v in interner.ids.values_mut() {
            *v += 1;
        }
        let mut order: Vec<usize> = (0..interner.names.len()).collect();
        order.sort_unstable_by(|&a, &b| interner.names[a].cmp(&interner.names[b]));
        let by_name = order
            .into_iter()
            .map(|id| u32::try_from(id).ok())
            .collect::<Option<Vec<u32>>>()?;
        let mut t = ClientTable {
            label: vec![0; by_name.len()],
            names: interner,
            by_name,
        };
        t.relabel();
        Some(t)
    }

    /// Every name, by id (index 0 is the empty name).
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.names.names()
    }

    /// The id of `name` if it was interned.
    pub fn get(&self, name: &str) -> Option<ClientId> {
        self.names.get(name).map(ClientId)
    }

    /// The name behind `id` (`""` for [`ClientId::NONE`] or an unknown id).
    pub fn name(&self, id: ClientId) -> &str {
        self.names.name(id.index())
    }

    /// Number of interned clients (including [`ClientId::NONE`]).
    pub fn len(&self) -> usize {
        self.names.names.len()
    }

    /// True when only [`ClientId::NONE`] is known.
    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }

    /// Compares two op positions: by stamp, then by op index inside the message.
    #[inline]
    pub fn cmp_pos(&self, a: Pos, b: Pos) -> Ordering {
        self.cmp_stamps(a.stamp, b.stamp).then(a.op.cmp(&b.op))
    }

    /// Compares two stamps in the total message order (DESIGN.md §4).
    #[inline]
    pub fn cmp_stamps(&self, a: Stamp, b: Stamp) -> Ordering {
        a.lt.cmp(&b.lt).then_with(|| {
            let r = |c: ClientId| self.label.get(c.index()).copied().unwrap_or(u64::MAX);
            r(a.client).cmp(&r(b.client))
        })
    }
}

/// The position of a message in the total order: `(lt, client)`.
///
/// Fields are in ordering order, but `Ord` is **not** derived: on equal `lt` the
/// tie is broken by the client *string*, which needs the [`ClientTable`]
/// ([`ClientTable::cmp_stamps`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Stamp {
    /// Lamport time of the message.
    pub lt: Lamport,
    /// The sending client.
    pub client: ClientId,
}

impl Stamp {
    /// The stamp of a cell no LWW write has touched: older than every real stamp.
    pub const ZERO: Stamp = Stamp {
        lt: 0,
        client: ClientId::NONE,
    };
}

/// A node key string interned in a [`KeyTable`]. Unlike [`NodeKey`] it exists for
/// every key ever *named* (a node may be referenced before its insert arrives).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(u32);

impl KeyId {
    /// The index of this key in its table.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The root keys (`""`, `"."`): property ops naming them target the root node.
    pub const ROOT: KeyId = KeyId(0);

    /// The id at a table index (the caller checked the index is in the table).
    pub(crate) fn from_index(i: u32) -> KeyId {
        KeyId(i)
    }
}

/// Interns node key strings; `""` is [`KeyId::ROOT`] (callers map the root keys `""`
/// and `"."` of property ops to it).
#[derive(Clone, Debug)]
pub struct KeyTable(Interner);

impl Default for KeyTable {
    fn default() -> Self {
        let mut t = Interner::default();
        t.intern("");
        Self(t)
    }
}

impl KeyTable {
    /// The id of `key`, interning it on first sight.
    pub fn intern(&mut self, key: &str) -> KeyId {
        KeyId(self.0.intern(key))
    }

    /// The id of `key` if it was interned.
    pub fn get(&self, key: &str) -> Option<KeyId> {
        self.0.get(key).map(KeyId)
    }

    /// The key behind `id`.
    pub fn name(&self, id: KeyId) -> &str {
        self.0.name(id.0 as usize)
    }

    /// A table holding `names` at their ids (`names[0]` must be `""`, the root keys'
    /// id, and no name may repeat).
    pub(crate) fn from_names(names: Vec<Box<str>>) -> Option<KeyTable> {
        if names.first().is_none_or(|n| !n.is_empty()) {
            return None;
        }
        Interner::from_names(names).map(KeyTable)
    }

    /// Every key, by id.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.names()
    }

    /// Number of interned keys.
    pub(crate) fn len(&self) -> usize {
        self.0.count()
    }
}

/// The position of one op in the total order: its message's stamp, then its index in
/// the message's `ops`. Compare with [`ClientTable::cmp_pos`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Pos {
    /// The message's stamp.
    pub stamp: Stamp,
    /// The op's index inside the message.
    pub op: u32,
}

impl Pos {
    /// Before every real op.
    pub const ZERO: Pos = Pos {
        stamp: Stamp::ZERO,
        op: 0,
    };

    /// The position of op `op` of a message stamped `stamp`.
    pub fn new(stamp: Stamp, op: usize) -> Pos {
        Pos {
            stamp,
            op: u32::try_from(op).unwrap_or(u32::MAX),
        }
    }
}

/// A property path interned in a [`PathTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(u32);

impl PathId {
    /// The index of this path in its table (and in the property store).
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id at a table index: the property store is indexed like the table.
    pub(crate) fn from_index(i: usize) -> PathId {
        PathId(u32::try_from(i).unwrap_or(u32::MAX))
    }
}

/// Interns property paths (`"position"`, `"transform.position"`, …).
#[derive(Clone, Debug, Default)]
pub struct PathTable(Interner);

impl PathTable {
    /// The id of `path`, interning it on first sight.
    pub fn intern(&mut self, path: &str) -> PathId {
        PathId(self.0.intern(path))
    }

    /// The id of `path` if it was interned.
    pub fn get(&self, path: &str) -> Option<PathId> {
        self.0.get(path).map(PathId)
    }

    /// The path behind `id`.
    pub fn name(&self, id: PathId) -> &str {
        self.0.name(id.index())
    }

    /// A table holding `names` at their ids; `None` when a name repeats.
    pub(crate) fn from_names(names: Vec<Box<str>>) -> Option<PathTable> {
        Interner::from_names(names).map(PathTable)
    }

    /// Every path, by id.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.names()
    }

    /// Number of interned paths.
    pub fn len(&self) -> usize {
        self.0.names.len()
    }

    /// True when no path was interned.
    pub fn is_empty(&self) -> bool {
        self.0.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_tie_break_on_client_string_not_id() {
        let mut t = ClientTable::default();
        let zed = t.intern("zed");
        let alice = t.intern("alice");
        let a = Stamp { lt: 5, client: zed };
        let b = Stamp {
            lt: 5,
            client: alice,
        };
        assert_eq!(t.cmp_stamps(a, b), Ordering::Greater);
        assert_eq!(
            t.cmp_stamps(Stamp { lt: 4, client: zed }, b),
            Ordering::Less
        );
        assert_eq!(
            t.cmp_stamps(
                Stamp::ZERO,
                Stamp {
                    lt: 0,
                    client: alice
                }
            ),
            Ordering::Less
        );
        // Upper case sorts before lower case, byte-wise.
        let mia = t.intern("Mia");
        assert_eq!(
            t.cmp_stamps(
                Stamp { lt: 1, client: mia },
                Stamp {
                    lt: 1,
                    client: alice
                }
            ),
            Ordering::Less
        );
    }

    #[test]
    fn a_restored_table_ranks_new_names_in_string_order() {
        let names: Vec<Box<str>> = ["", "m", "c", "x"].into_iter().map(Box::from).collect();
        let mut t = ClientTable::from_names(names).unwrap();
        let (a, n, z) = (t.intern("a"), t.intern("n"), t.intern("z"));
        let st = |client| Stamp { lt: 1, client };
        let ids = [
            a,
            t.get("c").unwrap(),
            t.get("m").unwrap(),
            n,
            t.get("x").unwrap(),
            z,
        ];
        for w in ids.windows(2) {
            assert_eq!(t.cmp_stamps(st(w[0]), st(w[1])), Ordering::Less);
        }
    }

    #[test]
    fn ranks_follow_string_order_whatever_the_arrival_order() {
        let names = [
            "c-20", "alice", "Mia", "c-1f", "ZZ-top", "c-1", "carol", "bob", "a", "",
        ];
        let mut t = ClientTable::default();
        let ids: Vec<ClientId> = names.iter().map(|n| t.intern(n)).collect();
        for (i, a) in names.iter().enumerate() {
            for (j, b) in names.iter().enumerate() {
                let (sa, sb) = (
                    Stamp {
                        lt: 1,
                        client: ids[i],
                    },
                    Stamp {
                        lt: 1,
                        client: ids[j],
                    },
                );
                assert_eq!(t.cmp_stamps(sa, sb), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    /// Names arriving in ascending, descending and scrambled order, enough of them to
    /// exhaust the gaps between labels many times over (relabels), keep the order.
    #[test]
    fn labels_follow_string_order_through_relabels() {
        for order in 0..3 {
            let mut names: Vec<String> = (0..3_000).map(|i| format!("c{i:05}")).collect();
            match order {
                1 => names.reverse(),
                2 => names.sort_by_key(|n| n.bytes().rev().collect::<Vec<u8>>()),
                _ => {}
            }
            let mut t = ClientTable::default();
            let mut ids: Vec<(ClientId, &str)> =
                names.iter().map(|n| (t.intern(n), n.as_str())).collect();
            let st = |client| Stamp { lt: 7, client };
            ids.sort_by(|a, b| t.cmp_stamps(st(a.0), st(b.0)));
            assert!(ids.windows(2).all(|w| w[0].1 < w[1].1), "order {order}");
            assert_eq!(
                t.cmp_stamps(st(ClientId::NONE), st(ids[0].0)),
                Ordering::Less
            );
        }
    }

    #[test]
    fn interning_is_stable() {
        let mut p = PathTable::default();
        let a = p.intern("position");
        let b = p.intern("transform.position");
        assert_ne!(a, b);
        assert_eq!(p.intern("position"), a);
        assert_eq!(p.name(b), "transform.position");
        assert_eq!(p.get("nope"), None);
    }
}
