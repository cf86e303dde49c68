//! Unit and property tests of the text CRDT: local edits equal plain string editing;
//! concurrent edits delivered in any order (anchors and deleted ids arriving late,
//! duplicates) converge; the reference's ordering rule for siblings.

use proptest::prelude::*;

use super::*;

fn apply_plain(s: &mut Vec<char>, op: &Edit) {
    match op {
        Edit::Insert(p, t) => {
            let p = (*p).min(s.len());
            s.splice(p..p, t.chars());
        }
        Edit::Delete(p, n) => {
            let p = (*p).min(s.len());
            let e = (p + n).min(s.len());
            s.drain(p..e);
        }
    }
}

#[derive(Clone, Debug)]
enum Edit {
    Insert(usize, String),
    Delete(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (0usize..40, prop::sample::select(&["a", "bc", "héllo", "中文", "x", "Ωmega!"][..]))
            .prop_map(|(p, t)| Edit::Insert(p, t.to_owned())),
        1 => (0usize..40, 0usize..6).prop_map(|(p, n)| Edit::Delete(p, n)),
    ]
}

#[test]
fn typing_and_deleting() {
    let mut d = TextDoc::new();
    d.insert("a", 0, "Hello", 1.0);
    d.insert("a", 5, " world", 1.0);
    d.insert("a", 0, ">", 1.0);
    assert_eq!(d.text(), ">Hello world");
    let rm = d.delete(1, 5);
    assert_eq!(d.text(), "> world");
    assert_eq!(
        rm,
        vec![DeleteRange {
            id: ItemId {
                agent: "a".into(),
                seq: 0
            },
            len: 5
        }]
    );
    d.delete(100, 3);
    d.delete(5, 100);
    assert_eq!(d.text(), "> wor");
    assert_eq!(
        d.insert("a", 99, "!", 1.0).map(|op| op.content),
        Some("!".into())
    );
    assert_eq!(d.text(), "> wor!");
    assert_eq!(d.insert("a", 0, "", 1.0), None);
}

#[test]
fn siblings_order_by_lamport_then_ts_then_id() {
    let base = |d: &mut TextDoc| d.insert("z", 0, "ab", 0.0).unwrap();
    let mut origin = TextDoc::new();
    let ab = base(&mut origin);
    // Three agents insert after "a" concurrently; two share a Lamport number.
    let mk = |agent: &str, lamport: u64, ts: f64, text: &str| InsertOp {
        id: ItemId {
            agent: agent.into(),
            seq: 0,
        },
        anchor: Some(ItemId {
            agent: "z".into(),
            seq: 0,
        }),
        content: text.into(),
        lamport,
        ts,
    };
    let ops = [
        mk("p", 2, 5.0, "P"),
        mk("q", 3, 9.0, "Q"),
        mk("r", 2, 4.0, "R"),
        mk("s", 2, 4.0, "S"),
    ];
    let perms: [[usize; 4]; 4] = [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]];
    for perm in perms {
        let mut d = TextDoc::new();
        d.apply_insert(&ab);
        for i in perm {
            d.apply_insert(&ops[i]);
        }
        // Higher lamport first (Q); then equal lamport by earlier ts (R, S at 4.0 before
        // P at 5.0); equal ts by id string ("r:0" < "s:0").
        assert_eq!(d.text(), "aQRSPb", "order {perm:?}");
    }
}

#[test]
fn inserts_and_deletes_wait_for_what_they_name() {
    let mut a = TextDoc::new();
    let first = a.insert("a", 0, "abc", 1.0).unwrap();
    let second = a.insert("a", 3, "def", 1.0).unwrap();
    let rm = a.delete(2, 2);
    assert_eq!(a.text(), "abef");
    let mut b = TextDoc::new();
    assert_eq!(b.apply_delete(&rm), Applied::Pending);
    assert_eq!(b.apply_insert(&second), Applied::Pending);
    assert_eq!(b.pending(), 2, "one missing delete range and one insert");
    assert_eq!(b.apply_insert(&first), Applied::Done);
    assert_eq!(b.text(), "abef");
    assert_eq!(b.pending(), 0);
    assert_eq!(b.apply_insert(&first), Applied::Duplicate);
}

#[test]
fn splitting_keeps_multibyte_text_intact() {
    let mut d = TextDoc::new();
    d.insert("a", 0, "中文héllo", 1.0);
    d.insert("a", 1, "X", 1.0);
    d.insert("a", 5, "Y", 1.0);
    assert_eq!(d.text(), "中X文héYllo");
    d.delete(3, 3);
    assert_eq!(d.text(), "中X文llo");
}

#[test]
fn typing_runs_merge_into_one_span_and_split_back() {
    let mut d = TextDoc::new();
    for (i, c) in "hello world".chars().enumerate() {
        d.insert("a", i, &c.to_string(), 1.0);
    }
    assert_eq!(d.span_count(), 1);
    // Another agent types inside the run: it splits, with the right Lamport numbers.
    let mut e = d.clone();
    let op = e.insert("b", 5, ",", 2.0).unwrap();
    assert_eq!(op.anchor.as_ref().map(|a| a.seq), Some(4));
    assert_eq!(e.text(), "hello, world");
    let dump = e.dump();
    assert_eq!(dump.len(), 3);
    assert_eq!(
        dump[2].2, 6,
        "the right part keeps its characters' Lamport numbers"
    );
    d.apply_insert(&op);
    assert_eq!(d.text(), e.text());
}

#[test]
fn backspacing_joins_the_tombstones() {
    let mut d = TextDoc::new();
    for (i, c) in "hello".chars().enumerate() {
        d.insert("a", i, &c.to_string(), 1.0);
    }
    for n in (1..5).rev() {
        d.delete(n, 1);
        assert_eq!(d.tree.check(), Ok(()));
    }
    assert_eq!(d.text(), "h");
    // "h" and one tombstone "ello", not four.
    assert_eq!(d.span_count(), 2);
    // A remote copy that gets the deletes as ranges ends the same.
    let mut e = TextDoc::new();
    e.apply_insert(&InsertOp {
        id: ItemId {
            agent: "a".into(),
            seq: 0,
        },
        anchor: None,
        content: "hello".into(),
        lamport: 1,
        ts: 1.0,
    });
    for seq in (1..5).rev() {
        e.apply_delete(&[DeleteRange {
            id: ItemId {
                agent: "a".into(),
                seq,
            },
            len: 1,
        }]);
    }
    assert_eq!((e.text().as_str(), e.span_count()), ("h", 2));
}

#[test]
fn a_huge_delete_range_costs_what_is_held() {
    let mut d = TextDoc::new();
    let ins = |seq: u32, anchor: Option<u32>, content: &str| InsertOp {
        id: ItemId {
            agent: "x".into(),
            seq,
        },
        anchor: anchor.map(|seq| ItemId {
            agent: "x".into(),
            seq,
        }),
        content: content.into(),
        lamport: u64::from(seq) + 1,
        ts: 0.0,
    };
    d.apply_insert(&ins(0, None, "ab"));
    d.apply_insert(&ins(1_000_000, Some(1), "cd"));
    assert_eq!(d.text(), "abcd");
    // Deletes every id of x: the held ones go now, the rest wait as two ranges.
    let out = d.apply_delete(&[DeleteRange {
        id: ItemId {
            agent: "x".into(),
            seq: 0,
        },
        len: u32::MAX,
    }]);
    assert_eq!(out, Applied::Pending);
    assert_eq!((d.text().as_str(), d.pending()), ("", 2));
    assert_eq!(d.tree.check(), Ok(()));
    // What arrives later in the range is deleted on arrival.
    d.apply_insert(&ins(2, Some(1), "zz"));
    assert_eq!(d.text(), "");
}

#[test]
fn many_spans_split_chunks() {
    let mut d = TextDoc::new();
    let mut plain = Vec::new();
    for i in 0..2_000usize {
        let p = (i * 7919) % (plain.len() + 1);
        d.insert("a", p, "xy", 1.0);
        apply_plain(&mut plain, &Edit::Insert(p, "xy".into()));
    }
    for i in 0..500usize {
        let p = (i * 104_729) % plain.len();
        d.delete(p, 3);
        apply_plain(&mut plain, &Edit::Delete(p, 3));
    }
    assert_eq!(d.text(), plain.iter().collect::<String>());
    assert_eq!(d.tree.check(), Ok(()));
    assert!(d.span_count() > tree::CHUNK * 4);
}

proptest! {
    #![proptest_config(crate::test_support::proptest_config(256))]

    #[test]
    fn local_edits_are_plain_string_editing(edits in prop::collection::vec(edit(), 1..60)) {
        let mut d = TextDoc::new();
        let mut plain = Vec::new();
        for e in &edits {
            match e {
                Edit::Insert(p, t) => { d.insert("me", *p, t, 1.0); }
                Edit::Delete(p, n) => { d.delete(*p, *n); }
            }
            apply_plain(&mut plain, e);
            prop_assert_eq!(d.tree.check(), Ok(()));
            prop_assert_eq!(d.text(), plain.iter().collect::<String>());
            prop_assert_eq!(d.len(), plain.len());
        }
    }

    #[test]
    fn typing_on_at_the_cursor_is_plain_string_editing(
        edits in prop::collection::vec((edit(), 0usize..4), 1..80)
    ) {
        // Most inserts go where the last one ended (the remembered cursor); deletes and
        // inserts elsewhere in between must not leave it stale.
        let mut d = TextDoc::new();
        let mut plain = Vec::new();
        let mut cursor = 0;
        for (e, k) in &edits {
            let e = match e {
                Edit::Insert(_, t) if *k > 0 => Edit::Insert(cursor, t.clone()),
                other => other.clone(),
            };
            match &e {
                Edit::Insert(p, t) => {
                    d.replace("me", *p, 0, t, 1.0);
                    cursor = (*p).min(plain.len()) + t.chars().count();
                }
                Edit::Delete(p, n) => d.replace("me", *p, *n, "", 1.0),
            }
            apply_plain(&mut plain, &e);
            prop_assert_eq!(d.tree.check(), Ok(()));
            prop_assert_eq!(d.text(), plain.iter().collect::<String>());
        }
    }

    #[test]
    fn plans_equal_what_the_edit_sends(
        edits in prop::collection::vec(edit(), 0..30),
        pos in 0usize..40,
        len in 0usize..6,
        text in prop::sample::select(&["", "z", "中文"][..]),
    ) {
        let mut d = TextDoc::new();
        for (k, e) in edits.iter().enumerate() {
            let agent = if k % 3 == 0 { "other" } else { "me" };
            match e {
                Edit::Insert(p, t) => { d.insert(agent, *p, t, 1.0); }
                Edit::Delete(p, n) => { d.delete(*p, *n); }
            }
        }
        let rm = d.plan_delete(pos, len);
        let ins = d.plan_insert("me", pos, text, 2.0, 0);
        let mut e = d.clone();
        prop_assert_eq!(e.delete(pos, len), rm);
        prop_assert_eq!(e.insert("me", pos, text, 2.0), ins);
    }

    #[test]
    fn concurrent_edits_converge_in_any_delivery_order(
        script in prop::collection::vec((0usize..3, edit(), any::<bool>()), 1..50),
        seeds in any::<[u64; 3]>(),
    ) {
        // Three agents edit their own copy; after each edit, `sync` decides whether the
        // agent first catches up on everything sent so far (else it edits concurrently).
        let agents = ["alice", "bob", "Carol"];
        let mut docs = [TextDoc::new(), TextDoc::new(), TextDoc::new()];
        let mut seen = [0usize; 3];
        let mut log: Vec<Sent> = Vec::new();
        for (i, e, sync) in &script {
            if *sync {
                for s in &log[seen[*i]..] {
                    deliver(&mut docs[*i], s);
                }
                seen[*i] = log.len();
            }
            // Agent 0 types with one wall clock, so its runs merge into spans.
            let ts = if *i == 0 { 1.0 } else { log.len() as f64 * 0.5 };
            let sent = match e {
                Edit::Insert(p, t) => docs[*i].insert(agents[*i], *p, t, ts).map(Sent::Ins),
                Edit::Delete(p, n) => {
                    let rm = docs[*i].delete(*p, *n);
                    (!rm.is_empty()).then_some(Sent::Del(rm))
                }
            };
            if let Some(s) = sent {
                // The sender already has it.
                if seen[*i] == log.len() {
                    seen[*i] += 1;
                }
                log.push(s);
            }
        }
        // Fresh replicas receive the whole log in shuffled orders, with duplicates.
        let mut texts = Vec::new();
        let mut chars = Vec::new();
        for seed in seeds {
            let mut order: Vec<usize> = (0..log.len()).chain(0..log.len() / 3).collect();
            shuffle(&mut order, seed);
            let mut d = TextDoc::new();
            for k in order {
                deliver(&mut d, &log[k]);
                prop_assert_eq!(d.tree.check(), Ok(()));
            }
            prop_assert_eq!(d.pending(), 0);
            texts.push(d.text());
            chars.push(per_char(&d));
        }
        // The editing copies catch up too.
        for (i, d) in docs.iter_mut().enumerate() {
            for s in &log[seen[i]..] {
                deliver(d, s);
            }
            texts.push(d.text());
            chars.push(per_char(d));
        }
        for t in &texts {
            prop_assert_eq!(t, &texts[0]);
        }
        // Not only the text: every character, tombstones included, with its id,
        // anchor and Lamport number, in the same order (however spans split or join).
        for c in &chars {
            prop_assert_eq!(c, &chars[0]);
        }
    }
}

proptest! {
    #![proptest_config(crate::test_support::proptest_config(128))]

    #[test]
    fn parts_restore_a_document_that_goes_on_alike(
        script in prop::collection::vec((0usize..3, edit()), 1..40),
        later in prop::collection::vec((0usize..3, edit()), 0..20),
        seed in any::<u64>(),
        cut in any::<prop::sample::Index>(),
    ) {
        // Three agents edit; a fourth replica receives a shuffled prefix of the log,
        // so it holds waiting inserts and pending deletes too.
        let agents = ["alice", "bob", "Carol"];
        let mut docs = [TextDoc::new(), TextDoc::new(), TextDoc::new()];
        let mut log = Vec::new();
        let run = |docs: &mut [TextDoc; 3], log: &mut Vec<Sent>, script: &[(usize, Edit)]| {
            for (i, e) in script {
                let ts = log.len() as f64;
                let sent = match e {
                    Edit::Insert(p, t) => docs[*i].insert(agents[*i], *p, t, ts).map(Sent::Ins),
                    Edit::Delete(p, n) => {
                        let rm = docs[*i].delete(*p, *n);
                        (!rm.is_empty()).then_some(Sent::Del(rm))
                    }
                };
                if let Some(s) = sent {
                    for (k, d) in docs.iter_mut().enumerate() {
                        if k != *i {
                            deliver(d, &s);
                        }
                    }
                    log.push(s);
                }
            }
        };
        run(&mut docs, &mut log, &script);
        let mut order: Vec<usize> = (0..log.len()).collect();
        shuffle(&mut order, seed);
        let mut partial = TextDoc::new();
        for &k in &order[..cut.index(order.len() + 1)] {
            deliver(&mut partial, &log[k]);
        }
        let mut originals = [docs[0].clone(), partial];
        let mut restored: Vec<TextDoc> = originals
            .iter()
            .map(|d| TextDoc::from_parts(d.to_parts()).unwrap())
            .collect();
        for (o, r) in originals.iter().zip(&restored) {
            prop_assert_eq!(r.tree.check(), Ok(()));
            prop_assert_eq!(per_char(r), per_char(o));
            prop_assert_eq!(r.text(), o.text());
            prop_assert_eq!(r.pending(), o.pending());
            prop_assert_eq!(r.to_parts().waiting, o.to_parts().waiting);
        }
        // The same later ops (local edits as alice, then the whole log) have the same
        // effect on both.
        let mut more = Vec::new();
        run(&mut docs, &mut more, &later);
        for d in originals.iter_mut().chain(restored.iter_mut()) {
            for (_, e) in &later {
                match e {
                    Edit::Insert(p, t) => { d.insert("alice", *p, t, 9.0); }
                    Edit::Delete(p, n) => { d.delete(*p, *n); }
                }
            }
            for s in log.iter().chain(&more) {
                deliver(d, s);
            }
        }
        for (o, r) in originals.iter().zip(&restored) {
            prop_assert_eq!(r.tree.check(), Ok(()));
            prop_assert_eq!(per_char(r), per_char(o));
            prop_assert_eq!(r.text(), o.text());
        }
    }
}

#[test]
fn invalid_parts_are_refused_whole() {
    let mut d = TextDoc::new();
    d.replace("a", 0, 0, "hello", 1.0);
    d.replace("b", 2, 1, "XY", 2.0);
    let good = d.to_parts();
    assert!(TextDoc::from_parts(good.clone()).is_ok());
    let mut twice = good.clone();
    twice.agents.push("a".into());
    let mut overlap = good.clone();
    overlap.spans.push(overlap.spans[0].clone());
    overlap
        .text
        .push_str(&good.text[..good.spans[0].len as usize]);
    let mut short = good.clone();
    short.text.pop();
    let mut stranger = good.clone();
    stranger.spans[0].agent = 7;
    let mut empty = good.clone();
    empty.spans[0].len = 0;
    let mut overflow = good.clone();
    overflow.spans[0].seq = u32::MAX;
    let mut step = good.clone();
    step.spans[0].step = 2;
    let mut delete = good.clone();
    delete.pending_deletes.push((0, 5, 5));
    for (what, parts) in [
        ("repeated agent", twice),
        ("shared ids", overlap),
        ("text length", short),
        ("agent range", stranger),
        ("empty span", empty),
        ("id overflow", overflow),
        ("step", step),
        ("empty pending delete", delete),
    ] {
        let e = TextDoc::from_parts(parts).unwrap_err();
        assert!(
            e.to_string().starts_with("invalid text parts"),
            "{what}: {e}"
        );
    }
}

/// Every character of `d` in document order: id, anchor, Lamport number, wall clock
/// (bits), deleted.
fn per_char(d: &TextDoc) -> Vec<(ItemId, Option<ItemId>, u64, u64, bool)> {
    let mut out = Vec::new();
    for (s, _) in d.tree.spans() {
        for k in 0..s.len {
            let anchor = if k == 0 {
                s.anchor
            } else {
                Some(CharId {
                    agent: s.agent,
                    seq: s.seq + k - 1,
                })
            };
            out.push((
                d.wire_id(CharId {
                    agent: s.agent,
                    seq: s.seq + k,
                }),
                anchor.map(|a| d.wire_id(a)),
                s.lamport_at(k),
                s.ts.to_bits(),
                s.deleted,
            ));
        }
    }
    out
}

#[derive(Clone, Debug)]
enum Sent {
    Ins(InsertOp),
    Del(Vec<DeleteRange>),
}

fn deliver(d: &mut TextDoc, s: &Sent) {
    match s {
        Sent::Ins(op) => {
            d.apply_insert(op);
        }
        Sent::Del(rm) => {
            d.apply_delete(rm);
        }
    }
}

fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}
