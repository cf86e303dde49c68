"""Three GraphStores of the Python reference (vuer-rtc 0.0.2) edit one scene through
a `vuer-rtc serve` URL, over WebSockets (`websockets`) with the reference's own
MessagePack framing (`vuer_rtc.serdes`): concurrent property and node ops, text
(`text.init`, position-based `text.insert` / `text.delete`, which the reference sends
with their CRDT fields), and one
client that goes offline, edits, comes back with `sync` and resends what was never
acknowledged. Prints one JSON object: each client's nodes ({key: {tag, properties,
deleted}}) and the server's state hash as each client last saw it.

Usage: python server_reference.py ws://HOST:PORT/scenes/SCENE
"""
import asyncio
import json
import sys

import websockets
from vuer_rtc import serdes
from vuer_rtc.client.graph_store import GraphStore, getUnackedMessages
from vuer_rtc.operations.types import CRDTMessage

URL = sys.argv[1]
TIMEOUT = 20


class Peer:
    def __init__(self, name):
        self.name = name
        self.outbox = []
        self.store = GraphStore(name, on_send=self.outbox.append)
        self.ws = None
        self.checks = 0

    async def connect(self, join="state"):
        self.ws = await websockets.connect(f"{URL}?join={join}", max_size=None)
        if join == "state":
            frame = serdes.deserialize(await asyncio.wait_for(self.ws.recv(), TIMEOUT))
            assert frame["mtype"] == "state", frame
            for m in frame["journal"]:
                self.store.receive(CRDTMessage.fromDict(m))

    async def close(self):
        await self.ws.close()
        self.ws = None

    def edit(self, *ops):
        for op in ops:
            self.store.edit(op)
        self.store.commit()

    async def flush(self):
        while self.outbox:
            m = self.outbox.pop(0)
            if self.ws is not None:
                await self.ws.send(serdes.serialize(serdes.msg_to_wire(m)))

    def handle(self, frame):
        t = frame["mtype"]
        if t == "broadcast":
            self.store.receive(CRDTMessage.fromDict(frame["msg"]))
        elif t == "ack":
            self.store.ack(frame["msgId"])
        elif t == "error":
            raise RuntimeError(f"{self.name}: {frame['error']}")
        return frame

    async def settle(self):
        """Sends what is queued, and reads until every message of ours is acked."""
        await self.flush()
        while getUnackedMessages(self.store.getState()):
            self.handle(serdes.deserialize(await asyncio.wait_for(self.ws.recv(), TIMEOUT)))

    async def check(self):
        """A sync-check round trip: every frame the server queued for us before it
        answered has been handled. Returns the server's status."""
        self.checks += 1
        rid = f"{self.name}-{self.checks}"
        await self.ws.send(serdes.serialize({"mtype": "sync-check", "requestId": rid}))
        while True:
            frame = self.handle(serdes.deserialize(await asyncio.wait_for(self.ws.recv(), TIMEOUT)))
            if frame["mtype"] == "sync-status" and frame["requestId"] == rid:
                return frame["status"]

    def nodes(self):
        g = self.store.getState().graph
        out = {}
        for key, n in g.nodes.items():
            props = {p: v for p, v in n.properties.items() if not p.startswith("_")}
            out[key] = {"tag": n.tag, "properties": props, "deleted": n._crdt.deletedAt is not None}
        return out


async def everyone(peers, f):
    await asyncio.gather(*(f(p) for p in peers))


async def main():
    alice, bob, carol = Peer("alice"), Peer("bob"), Peer("carol")
    peers = [alice, bob, carol]
    await everyone(peers, lambda p: p.connect())

    alice.edit({"ot": "node.insert", "key": "", "path": "children",
                "value": {"key": "cube", "tag": "Mesh", "health": 100, "position": [0, 0, 0]}})
    # A text property, in its own commit: the reference's edit buffer folds two ops
    # on the same key and path (two inserts into `""`.children) into the last one.
    alice.edit({"ot": "node.insert", "key": "", "path": "children",
                "value": {"key": "doc", "tag": "Text"}},
               {"ot": "text.init", "key": "doc", "path": "label", "value": ""})
    await alice.settle()
    await everyone(peers, lambda p: p.check())

    # Concurrent: additive ops, LWW sets, a node insert.
    alice.edit({"ot": "number.add", "key": "cube", "path": "health", "value": -10})
    bob.edit({"ot": "number.add", "key": "cube", "path": "health", "value": -25},
             {"ot": "node.insert", "key": "cube", "path": "children",
              "value": {"key": "sphere", "tag": "Sphere", "radius": 0.5}})
    carol.edit({"ot": "vector3.set", "key": "cube", "path": "position", "value": [1, 2, 3]},
               {"ot": "string.set", "key": "cube", "path": "color", "value": "#ff0000"})
    # Concurrent text: two inserts at the same place (the rope orders them).
    alice.edit({"ot": "text.insert", "key": "doc", "path": "label", "position": 0,
                "value": [None, "hello"]})
    bob.edit({"ot": "text.insert", "key": "doc", "path": "label", "position": 0,
              "value": [None, "wörld"]})
    await everyone(peers, lambda p: p.settle())
    await everyone(peers, lambda p: p.check())

    # Carol goes offline and edits; the others go on.
    await carol.close()
    carol.edit({"ot": "number.add", "key": "cube", "path": "health", "value": -1})
    carol.edit({"ot": "number.set", "key": "sphere", "path": "radius", "value": 2})
    carol.edit({"ot": "text.delete", "key": "doc", "path": "label", "position": 1, "length": 2})
    alice.edit({"ot": "text.insert", "key": "doc", "path": "label", "position": 0,
                "value": [None, "¡"]})
    alice.edit({"ot": "vector3.add", "key": "cube", "path": "position", "value": [0.5, 0.5, 0.5]})
    bob.edit({"ot": "string.set", "key": "cube", "path": "color", "value": "#00ff00"},
             {"ot": "boolean.set", "key": "sphere", "path": "visible", "value": False})
    await alice.settle()
    await bob.settle()
    carol.outbox.clear()  # sent into the void while offline: resent below

    # Back: sync by vector clock, then resend everything never acknowledged.
    await carol.connect(join="none")
    clock = dict(carol.store.getState().vectorClock)
    await carol.ws.send(serdes.serialize({"mtype": "sync", "vectorClock": clock}))
    await carol.check()
    for m in getUnackedMessages(carol.store.getState()):
        carol.outbox.append(m)
    await carol.settle()

    statuses = {}
    for p in peers:
        statuses[p.name] = (await p.check())["hash"]
    print(json.dumps({"nodes": {p.name: p.nodes() for p in peers}, "hashes": statuses}))
    await everyone(peers, lambda p: p.close())


asyncio.run(main())
