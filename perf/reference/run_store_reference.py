"""Run the client-store workload through the Python reference, vuer-rtc 0.0.2 on PyPI.

The workload file comes from `vuer-rtc workload --relayed` (a JSON array: the scene's
messages, then messages of 10 `vector3.set` in Lamport order). A `GraphStore` receives
the scene (untimed), then:

- receive: the first `--receive N` edit messages, one `store.receive(msg)` each;
- edit+commit: `--rounds R` rounds of 10 `store.edit(vector3.set)` and one
  `store.commit()`, on the nodes and values of the next edit messages.

The reference deep-copies its state on every edit and receive and rebuilds the graph
on every receive, so keep N and R small.

Usage (see perf/reference/README.md):
    python run_store_reference.py WORKLOAD.json --scene-messages 10 --receive 50 --rounds 20
Prints one line per measurement.
"""
import argparse
import json
import time

from vuer_rtc import CRDTMessage

try:  # the guide's name; 0.0.2 on PyPI exports the camel-case one
    from vuer_rtc import create_graph
except ImportError:
    from vuer_rtc import createGraph as create_graph


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload")
    ap.add_argument("--scene-messages", type=int, required=True,
                    help="how many leading messages build the scene (received untimed)")
    ap.add_argument("--receive", type=int, default=50, help="edit messages to receive (timed)")
    ap.add_argument("--rounds", type=int, default=20, help="edit+commit rounds of 10 ops (timed)")
    args = ap.parse_args()
    with open(args.workload, encoding="utf-8") as f:
        raw = json.load(f)
    scene, edits = raw[: args.scene_messages], raw[args.scene_messages:]

    store = create_graph("me", on_send=lambda msg: None)
    for m in scene:
        store.receive(CRDTMessage.fromDict(m))

    msgs = [CRDTMessage.fromDict(m) for m in edits[: args.receive]]
    start = time.perf_counter()
    for m in msgs:
        store.receive(m)
    secs = time.perf_counter() - start
    print(f"reference vuer-rtc 0.0.2 GraphStore.receive: {len(msgs)} messages of 10 ops: "
          f"{secs:.3f} s, {len(msgs) / secs:.1f} messages/s")

    rounds = edits[args.receive: args.receive + args.rounds]
    ops = 0
    start = time.perf_counter()
    for m in rounds:
        for op in m["ops"]:
            store.edit({"otype": "vector3.set", "key": op["key"], "path": op["path"],
                        "value": op["value"]})
            ops += 1
        store.commit("round")
    secs = time.perf_counter() - start
    print(f"reference vuer-rtc 0.0.2 GraphStore.edit+commit: {len(rounds)} rounds, {ops} ops: "
          f"{secs:.3f} s, {ops / secs:.1f} ops/s")


if __name__ == "__main__":
    main()
