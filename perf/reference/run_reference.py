"""Run a workload file through the Python reference, vuer-rtc 0.0.2 on PyPI.

The workload file comes from `vuer-rtc workload` (a JSON array: the scene's messages,
then the edits in arrival order). The reference's `applyMessageMut` applies each
message in arrival order (it has no canonical order, no dedupe and no undo: its
state can differ from ours on late messages; only the speed is compared here).

Usage (see perf/reference/README.md):
    python run_reference.py WORKLOAD.json --scene-messages N
Prints one line: edit messages, ops, seconds, ops/s.
"""
import argparse
import json
import time

from vuer_rtc import CRDTMessage, applyMessageMut, createEmptyGraph


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload")
    ap.add_argument("--scene-messages", type=int, required=True,
                    help="how many leading messages build the scene (applied untimed)")
    args = ap.parse_args()
    with open(args.workload, encoding="utf-8") as f:
        raw = json.load(f)
    msgs = [CRDTMessage.fromDict(m) for m in raw]
    scene, edits = msgs[: args.scene_messages], msgs[args.scene_messages:]
    graph = createEmptyGraph()
    for m in scene:
        applyMessageMut(graph, m)
    ops = sum(len(m.ops) for m in edits)
    start = time.perf_counter()
    for m in edits:
        applyMessageMut(graph, m)
    secs = time.perf_counter() - start
    print(f"reference vuer-rtc 0.0.2 applyMessageMut: {len(edits)} messages, {ops} ops: "
          f"{secs:.3f} s, {ops / secs:.0f} ops/s")


if __name__ == "__main__":
    main()
