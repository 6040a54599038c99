"""Two modules on `/ws/modules/{name}` (docs/modules.md#module-protocol) sending each other
messages, broadcasts and requests (and answering them), each keeping its own ledger: every
bus message id it got (message frames and request replies), and for every message it
sent, the outcome the service gave (accepted with its id, refused, or unknown when the
connection ended before the answer). At the end the ledgers are held against the
service's account (`GET /api/v2/modules/{name}` `messages`) and its dead letters.

Placement (`SOAK_MODULES`): `split` (the default) — one per instance, each going over to the other
instance while its own is down and back when it returns (the shared bus of issue 14:
with Redis a module may connect to any instance; a SIGKILLed instance may redeliver what
it held, so an id seen twice is redelivery there, at least once); `same` — both on the instance that is never killed (what a bus local to
one instance allows: `[modules] shared = false`).

Raw frames, not `gns3central.create_gns3_interface`: the ledger needs every frame's
request id and message id, and the slow phase must really stop reading the socket."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from dashboards import open_ws

BURST = 20  # while the peer reads slowly: this many times the rate, enough to fill its session mailbox
PAD = "x" * 1500  # slow phase: bigger messages, so the service's buffers fill up


@dataclass
class Conn:
    ws: ClientConnection
    inst: int
    opened: float
    replaced: bool = False  # we opened a newer one: this one is to end with 4009
    code: Optional[int] = None
    pending: dict[str, tuple[str, str]] = field(default_factory=dict)  # rid -> (kind, to)


@dataclass
class Ledger:
    """One module's view of the bus."""

    got: Counter[str] = field(default_factory=Counter)  # message ids received (frames + replies)
    accepted: dict[str, set[str]] = field(default_factory=dict)  # to -> ids the service accepted
    refused: Counter[str] = field(default_factory=Counter)  # to -> refused (code in `refusals`)
    refusals: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)  # to -> sent, no answer (connection ended)
    unnamed: Counter[str] = field(default_factory=Counter)  # to -> requests accepted (timed out): id unknown
    requests: Counter[str] = field(default_factory=Counter)  # answered, timed_out, refused, unknown
    errors: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)  # close codes of its connections
    connections: int = 0
    slow_frames: int = 0
    accepted_at: dict[str, float] = field(default_factory=dict)  # id -> when the service said so
    replies: set[str] = field(default_factory=set)  # ids of the replies it sent to the peer's requests
    spans: list[tuple[float, float, str, Optional[int]]] = field(default_factory=list)  # connections


class Module:
    def __init__(self, name: str, peer: str, token: str, soak: Any, home: int, alt: Optional[int]):
        self.name = name
        self.peer = peer
        self.token = token
        self.soak = soak
        self.home = home
        self.alt = alt  # where to go while home is down (split mode), else None
        self.led = Ledger()
        self.conn: Optional[Conn] = None
        self.readers: set[asyncio.Task[None]] = set()
        self.slow_until = 0.0
        self.closed_for_good: Optional[str] = None
        self.last_connect_error = ""
        self._rid = 0
        self._connected = asyncio.Event()
        self._dropped = asyncio.Event()

    def rid(self, kind: str) -> str:
        self._rid += 1
        return f"{kind}{self._rid}"

    # ---- connections ----

    async def connect(self, inst: int) -> Conn:
        base = self.soak.instances[inst].base
        ws = await open_ws(base, f"/ws/modules/{self.name}", self.token, max_queue=16, rcvbuf=32 * 1024)
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if welcome.get("type") != "welcome":
            raise ValueError(f"{self.name}: first frame {welcome}")
        old, c = self.conn, Conn(ws, inst, time.monotonic())
        if old is not None:
            old.replaced = True
        self.conn = c
        self.led.connections += 1
        t = asyncio.get_running_loop().create_task(self._read(c))
        self.readers.add(t)
        t.add_done_callback(self.readers.discard)
        self._connected.set()
        self._dropped.clear()
        return c

    async def first_connect(self) -> None:
        """At home; failing that (a failure of the run), where it may go."""
        try:
            await self.connect(self.home)
            return
        except (OSError, asyncio.TimeoutError, WebSocketException, ValueError) as e:
            where = self.soak.instances[self.home].name
            self.soak.failures.append(f"module {self.name} cannot connect to its home instance {where}: {e}")
        if self.alt is not None:
            await self.connect(self.alt)

    async def move_to(self, inst: int) -> None:
        """Connect to `inst` while connected elsewhere: the newer connection replaces the
        older one (4009), which is read until it ends, so nothing it was sent is lost."""
        if self.conn is not None and self.conn.inst == inst:
            return
        try:
            await self.connect(inst)
        except (OSError, asyncio.TimeoutError, WebSocketException, ValueError) as e:
            self.soak.failures.append(f"module {self.name} cannot move to {self.soak.instances[inst].name}: {e}")

    async def keep_connected(self, deadline: float) -> None:
        """Reconnects (home first, then `alt`) whenever the connection is lost."""
        backoff = 0.1
        while not self.soak.stopping and time.monotonic() < deadline and self.closed_for_good is None:
            if self.conn is not None:
                try:
                    await asyncio.wait_for(self._dropped.wait(), 1.0)
                except asyncio.TimeoutError:
                    continue
            if self.closed_for_good is not None or self.soak.stopping:
                return
            targets = [self.home] + ([self.alt] if self.alt is not None else [])
            for inst in targets:
                try:
                    await self.connect(inst)
                    backoff = 0.1
                    break
                except (OSError, asyncio.TimeoutError, WebSocketException, ValueError) as e:
                    self.last_connect_error = f"{self.soak.instances[inst].name}: {e}"
                    continue
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _read(self, c: Conn) -> None:
        try:
            async for raw in c.ws:
                if time.monotonic() < self.slow_until:
                    # Reading too slowly: the socket fills, then the service's buffers.
                    self.led.slow_frames += 1
                    await asyncio.sleep(0.1)
                await self._frame(c, json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            c.code = c.ws.close_code
            self.led.closes[str(c.code)] += 1
            self.led.spans.append((c.opened, time.monotonic(), self.soak.instances[c.inst].name, c.code))
            if c.code not in (None, 1000):
                self.soak.log(
                    f"module {self.name}: its connection to {self.soak.instances[c.inst].name} closed, {c.code}"
                )
            for _rid, (kind, to) in c.pending.items():
                self.led.unknown[to] += 1
                if kind == "q":
                    self.led.requests["unknown"] += 1
            c.pending.clear()
            if c.code == 4004:
                self.closed_for_good = "deleted (4004)"
            if c.code == 4009 and not c.replaced:
                self.soak.failures.append(f"{self.name}: replaced (4009) by a connection the soak did not open")
            if self.conn is c:
                self.conn = None
                self._connected.clear()
                self._dropped.set()

    async def _frame(self, c: Conn, f: dict[str, Any]) -> None:
        t = f.get("type")
        rid = f.get("request_id")
        if t == "message":
            m = f["message"]
            self.led.got[m["id"]] += 1
            if m.get("reply_to") and m.get("type") == "soak.req":
                await self._send_frame(
                    "r",
                    m["reply_to"],
                    {"type": "reply", "message": {"to": m["reply_to"], "correlation_id": m["id"], "payload": {}}},
                )
            return
        if not isinstance(rid, str) or rid not in c.pending:
            if t == "error":
                self.led.errors[str(f.get("code"))] += 1
            return
        kind, to = c.pending.pop(rid)
        if t == "sent":
            if int(f.get("accepted", 0)) > 0:
                self.led.accepted.setdefault(to, set()).add(f["id"])
                self.led.accepted_at[f["id"]] = time.monotonic()
                if kind == "r":
                    self.led.replies.add(f["id"])
            for name in f.get("refused") or []:
                self.led.refused[name] += 1
                self.led.refusals["broadcast_refused"] += 1
        elif t == "reply":
            self.led.got[f["message"]["id"]] += 1  # the reply: a message to this module
            self.led.accepted.setdefault(to, set()).add(f["id"])  # the request reached the peer
            self.led.requests["answered"] += 1
        elif t == "error":
            code = str(f.get("code"))
            if code == "reply_timeout":
                self.led.requests["timed_out"] += 1
                self.led.unnamed[to] += 1  # it reached the peer; its id is not told
            elif code in ("inbox_full", "module_offline"):
                self.led.refused[to] += 1
                self.led.refusals[code] += 1
                if kind == "q":
                    self.led.requests["refused"] += 1
            elif code == "bus_unavailable":
                # The shared bus while Redis is away (docs/modules.md): refused at once; whether
                # the target's account counts it is the bus's business, so it is slack here.
                self.led.unknown[to] += 1
                self.led.refusals[code] += 1
                if kind == "q":
                    self.led.requests["unavailable"] += 1
            else:
                self.led.errors[code] += 1
                if kind == "q":
                    self.led.requests["error"] += 1
        elif t == "action_result":
            self.soak.admin.module_action_result(self.name, rid, f)

    async def _send_frame(self, kind: str, to: str, frame: dict[str, Any]) -> Optional[str]:
        c = self.conn
        if c is None:
            return None
        rid = self.rid(kind)
        frame["request_id"] = rid
        c.pending[rid] = (kind, to)
        try:
            await c.ws.send(json.dumps(frame))
        except ConnectionClosed:
            return None  # the reader's finally counts it as unknown
        return rid

    # ---- what it does ----

    async def chatter(self, deadline: float, rate: float) -> None:
        """Messages to the peer at `rate`/s (BURST times as many, with a 1.5 kB payload, while the peer reads
        slowly), a broadcast and a request every 10th tick; bounded by `deadline` and by
        500 unanswered frames per connection."""
        n = 0
        while not self.soak.stopping and not self.soak.quiet and time.monotonic() < deadline:
            c = self.conn
            if c is None or len(c.pending) > 500:
                await asyncio.sleep(0.05)
                continue
            n += 1
            burst = self.soak.peer_slow(self.peer)
            payload: dict[str, Any] = {"n": n, "pad": PAD} if burst else {"n": n}
            await self._send_frame(
                "s", self.peer, {"type": "send", "message": {"to": self.peer, "type": "soak.msg", "payload": payload}}
            )
            if n % 10 == 0:
                await self._send_frame("b", self.peer, {"type": "broadcast", "message": {"type": "soak.hello"}})
                msg = {"to": self.peer, "type": "soak.req", "payload": {"n": n}}
                await self._send_frame("q", self.peer, {"type": "request", "timeout_ms": 5000, "message": msg})
                self.led.requests["sent"] += 1
            await asyncio.sleep(1.0 / (rate * (BURST if burst else 1)))

    async def node_action(self, action: str, project: str, node: str) -> Optional[str]:
        frame = {"type": "node_action", "action": action, "project_id": project, "node_id": node, "server": "default"}
        return await self._send_frame("a", "(action)", frame)

    async def settle(self, timeout: float) -> None:
        """Waits (bounded) until no frame of its waits for an answer."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            c = self.conn
            if (c is None or not c.pending) and len(self.readers) <= 1:
                return
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        for c in [self.conn]:
            if c is not None:
                await c.ws.close()
        if self.readers:
            await asyncio.wait(list(self.readers), timeout=10)
