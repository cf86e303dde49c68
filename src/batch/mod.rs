//! Canonical order: dedupe, sort by `(lt, client)`, apply the undo rule.
//!
//! Owns the convergence contract's *ordering* half (DESIGN.md §4): given a set of
//! messages in any arrival order, [`plan`] returns the data messages to apply, in the
//! one order every replica agrees on. Pure functions on slices; no graph, no IO.
//!
//! Invariants:
//! - the output depends only on the *set* of message ids (duplicates, arrival order and
//!   batch boundaries are invisible), see the tests and `tests/convergence.rs`;
//! - order is `(lt, client bytes)`; two distinct messages with the same `(lt, client)`
//!   (which a well-behaved client never sends) are ordered by id, so the order is total;
//! - a data message is skipped iff the newest (by the meta message's stamp, then op
//!   index) `meta.undo`/`meta.redo` targeting it is an undo. Meta ops targeting ids
//!   that are not in the set are ignored, and are never themselves undone.
//!
//! The worked example is in `README.md` beside this file. Read [`crate::graph`] next.

use std::cmp::Ordering;

use ahash::{AHashMap, AHashSet};

use crate::op::{Message, OpKind};

/// Compares two messages in canonical order: `lt`, then client (byte-wise), then id.
pub fn canonical_cmp(a: &Message, b: &Message) -> Ordering {
    a.lt.cmp(&b.lt)
        .then_with(|| a.client.as_bytes().cmp(b.client.as_bytes()))
        .then_with(|| a.id.as_bytes().cmp(b.id.as_bytes()))
}

/// The outcome of [`plan`]: what to apply, in order, and what was left out.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    /// Data messages to apply, in canonical order.
    pub apply: Vec<&'a Message>,
    /// Number of inputs dropped because their id was already seen.
    pub duplicates: usize,
    /// Data messages skipped because they are undone, in canonical order.
    pub undone: Vec<&'a Message>,
    /// Meta-only messages (they change no state themselves), in canonical order.
    pub meta: Vec<&'a Message>,
}

/// Dedupes by id (first copy wins), sorts canonically and applies the undo rule.
///
/// # Examples
/// ```
/// use vuer_rtc::op::{Message, Op};
/// let m = |id: &str, lt, ops| Message { id: id.into(), client: "a".into(), clock: Default::default(), lt, ts: 0.0, ops };
/// let msgs = vec![
///     m("a:2", 2, vec![Op::meta_undo("a:1")]),
///     m("a:1", 1, vec![Op::number_set("n", "x", 1.0)]),
///     m("a:1", 1, vec![Op::number_set("n", "x", 1.0)]),
/// ];
/// let plan = vuer_rtc::batch::plan(&msgs);
/// assert!(plan.apply.is_empty());
/// assert_eq!(plan.undone.len(), 1);
/// assert_eq!(plan.duplicates, 1);
/// ```
pub fn plan(messages: &[Message]) -> Plan<'_> {
    let mut seen = AHashSet::with_capacity(messages.len());
    let mut unique: Vec<&Message> = Vec::with_capacity(messages.len());
    for m in messages {
        if seen.insert(m.id.as_str()) {
            unique.push(m);
        }
    }
    let duplicates = messages.len() - unique.len();
    unique.sort_by(|a, b| canonical_cmp(a, b));

    // Newest meta op per target. `unique` is sorted, so a later (message, op) pair is
    // newer: a plain overwrite keeps the newest.
    let mut newest_is_undo: AHashMap<&str, bool> = AHashMap::new();
    for m in &unique {
        for op in &m.ops {
            match &op.kind {
                OpKind::MetaUndo { target } => {
                    newest_is_undo.insert(target, true);
                }
                OpKind::MetaRedo { target } => {
                    newest_is_undo.insert(target, false);
                }
                _ => {}
            }
        }
    }

    let mut out = Plan {
        duplicates,
        ..Plan::default()
    };
    for m in unique {
        if m.is_meta_only() {
            out.meta.push(m);
        } else if newest_is_undo.get(m.id.as_str()).copied().unwrap_or(false) {
            out.undone.push(m);
        } else {
            out.apply.push(m);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Op;

    fn msg(id: &str, client: &str, lt: u64, ops: Vec<Op>) -> Message {
        Message {
            id: id.into(),
            client: client.into(),
            clock: Default::default(),
            lt,
            ts: 0.0,
            ops,
        }
    }

    fn ids(p: &[&Message]) -> Vec<String> {
        p.iter().map(|m| m.id.clone()).collect()
    }

    #[test]
    fn sorts_by_lt_then_client_bytes() {
        let set = |v| Op::number_set("n", "x", v);
        let msgs = vec![
            msg("alice:2", "alice", 2, vec![set(1.0)]),
            msg("Mia:2", "Mia", 2, vec![set(2.0)]),
            msg("zed:1", "zed", 1, vec![set(3.0)]),
            msg("ZZ-top:2", "ZZ-top", 2, vec![set(4.0)]),
        ];
        assert_eq!(
            ids(&plan(&msgs).apply),
            ["zed:1", "Mia:2", "ZZ-top:2", "alice:2"]
        );
    }

    #[test]
    fn newest_meta_op_decides() {
        let d = msg("a:1", "a", 1, vec![Op::number_set("n", "x", 1.0)]);
        // Undo at lt 5 by b, redo at lt 5 by a: b > a, so the undo is newer.
        let undo = msg("b:5", "b", 5, vec![Op::meta_undo("a:1")]);
        let redo = msg("a:5", "a", 5, vec![Op::meta_redo("a:1")]);
        let all = [redo.clone(), d.clone(), undo.clone()];
        let p = plan(&all);
        assert_eq!(ids(&p.undone), ["a:1"]);
        assert_eq!(p.meta.len(), 2);
        // A later redo wins again.
        let redo2 = msg("a:6", "a", 6, vec![Op::meta_redo("a:1")]);
        let all = [redo, d, undo, redo2];
        let p = plan(&all);
        assert_eq!(ids(&p.apply), ["a:1"]);
    }

    #[test]
    fn meta_may_precede_target_and_target_may_be_absent() {
        let d = msg("a:9", "a", 9, vec![Op::number_set("n", "x", 1.0)]);
        let undo = msg(
            "b:2",
            "b",
            2,
            vec![Op::meta_undo("a:9"), Op::meta_undo("ghost")],
        );
        let all = [d, undo];
        let p = plan(&all);
        assert!(p.apply.is_empty());
        assert_eq!(ids(&p.undone), ["a:9"]);
    }

    #[test]
    fn order_independent() {
        let msgs: Vec<Message> = (0..20)
            .map(|i| {
                msg(
                    &format!("c{}:{}", i % 3, i),
                    &format!("c{}", i % 3),
                    i / 2,
                    vec![if i % 7 == 3 {
                        Op::meta_undo(format!("c{}:{}", (i + 1) % 3, i - 2))
                    } else {
                        Op::number_add("n", "x", 1.0)
                    }],
                )
            })
            .collect();
        let base = ids(&plan(&msgs).apply);
        let mut rev = msgs.clone();
        rev.reverse();
        rev.extend(msgs.iter().take(5).cloned());
        assert_eq!(ids(&plan(&rev).apply), base);
    }
}
