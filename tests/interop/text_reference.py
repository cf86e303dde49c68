"""The Python reference's text CRDT (vuer-rtc 0.0.2 `TextRope`), for the interop test.

    python text_reference.py generate SEED STEPS
        Three agents edit their own ropes with position ops, syncing now and then;
        prints {"ops": [...], "text": "..."}: every op in CRDT wire form, in the order
        they were made (a causal order), and the text every rope ends with after all
        have synced.
    python text_reference.py apply < ops.json
        Applies CRDT-form ops (same format) in the given order to a fresh rope and
        prints {"text": "..."}.

Wall clocks are a counter (deterministic). Ops: {"ot": "text.insert", "id", "value":
[anchor, content], "seq", "ts"} and {"ot": "text.delete", "rm": [[id, len], ...]}.
"""
import json
import random
import sys

import vuer_rtc.crdt.rope as rope

_clock = [0.0]


def _tick() -> float:
    _clock[0] += 0.25
    return _clock[0]


rope.time.time = _tick  # the rope stamps ops with time.time()

WORDS = ["a", "bc", "héllo", "中文", "x", "Ωmega!", "  "]


def wire(op):
    if op["ot"] == "insert":
        return {"ot": "text.insert", "id": op["id"], "value": list(op["value"]),
                "seq": op["seq"], "ts": op["ts"]}
    return {"ot": "text.delete", "rm": [list(r) for r in op["rm"]]}


def apply_wire(r, op):
    if op["ot"] == "text.insert":
        rope.apply(r, {"ot": "insert", "id": op["id"], "value": tuple(op["value"]),
                       "seq": op["seq"], "ts": op["ts"]})
    else:
        rope.apply_delete(r, {"ot": "delete", "rm": [tuple(x) for x in op["rm"]]})


def generate(seed: int, steps: int) -> None:
    rng = random.Random(seed)
    agents = ["alice", "bob", "Carol"]
    ropes = [rope.create(a) for a in agents]
    seen = [0, 0, 0]
    log = []
    for _ in range(steps):
        i = rng.randrange(3)
        if rng.random() < 0.4:
            for op in log[seen[i]:]:
                apply_wire(ropes[i], op)
            seen[i] = len(log)
        r = ropes[i]
        n = rope.get_length(r)
        if rng.random() < 0.7 or n == 0:
            op = rope.insert(r, rng.randrange(n + 1), rng.choice(WORDS), agents[i])
        else:
            p = rng.randrange(n)
            # The reference never returns on a range past the end: clamp it here.
            op = rope.remove(r, p, min(rng.randrange(1, 4), n - p))
            if not op["rm"]:
                continue
        if seen[i] == len(log):
            seen[i] += 1
        log.append(wire(op))
    for i in range(3):
        for op in log[seen[i]:]:
            apply_wire(ropes[i], op)
    texts = {rope.get_text(r) for r in ropes}
    assert len(texts) == 1, texts
    print(json.dumps({"ops": log, "text": texts.pop()}, ensure_ascii=False))


def apply_all() -> None:
    ops = json.load(sys.stdin)
    r = rope.create("reader")
    for op in ops:
        apply_wire(r, op)
    print(json.dumps({"text": rope.get_text(r)}, ensure_ascii=False))


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(int(sys.argv[2]), int(sys.argv[3]))
    else:
        apply_all()
