"""Dashboard clients on `/ws/gns3/events/` (docs/websocket.md), each checking its own
stream of events as it goes: within one epoch every `seq` follows the previous one,
unless the service said it could not (a `missed` frame, or a `replay` with
`recovered: false`, which also starts the new epoch); never the same (epoch, seq) twice;
and across its reconnections (`subscribe` with `since` = the last id it saw, to either
instance) the same holds at every seam.

Raw frames (the `websockets` package), not `gns3central.Central.events()`: the checks need
every `replay`, `missed` and `recovered` frame as the service sent it."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

EVENTS_PATH = "/ws/gns3/events/"
MAX_FRAME = 64 * 1024 * 1024


async def open_ws(
    base: str, path: str, token: str, max_queue: Optional[int] = 64, rcvbuf: Optional[int] = None
) -> ClientConnection:
    """`rcvbuf` (bytes): a small kernel receive buffer, set before the connection is made
    (the TCP window follows it), so that a client that reads slowly backs up into the
    service's own buffers instead of megabytes of loopback socket buffers."""
    kw: dict[str, Any] = {}
    if rcvbuf is not None:
        host, port = base.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, int(port))), 5)
        except BaseException:
            sock.close()
            raise
        kw["sock"] = sock
    return await connect(
        "ws://" + base.removeprefix("http://") + path,
        **kw,
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=5,
        ping_interval=None,  # the service pings; the library answers while it reads
        compression=None,
        max_size=MAX_FRAME,
        max_queue=max_queue,
        proxy=None,
    )


@dataclass
class DashResult:
    """What one dashboard client saw, and what of it is wrong."""

    events: int = 0
    connections: int = 0
    resumed: int = 0  # replay frames with recovered: true
    resyncs: dict[str, int] = field(default_factory=dict)  # recovered: false, by reason
    missed: int = 0  # events the service announced as shed
    gap_missing: int = 0  # seqs never received, within one connection
    unexcused: int = 0  # of those, more than the `missed` frames announced
    duplicates: int = 0  # an (epoch, seq) at or below the last one
    bad_epoch: int = 0  # another epoch without recovered: false
    failures: list[str] = field(default_factory=list)

    def fail(self, msg: str) -> None:
        if len(self.failures) < 5:
            self.failures.append(msg)


class Dashboard:
    def __init__(self, idx: int, soak: Any, home: int, token: str, actor: bool = False):
        self.idx = idx
        self.soak = soak
        self.home = home
        self.token = token
        self.actor = actor
        self.r = DashResult()
        self.epoch: Optional[str] = None
        self.last = -1
        self.last_id: Optional[str] = None
        self.at: Optional[int] = None  # the instance connected to now
        self.ws: Optional[ClientConnection] = None
        self._seg_missing = 0
        self._seg_credit = 0
        self._seg_gaps: list[tuple[int, int]] = []
        self._rid = 0

    # ---- the checks, frame by frame ----

    def _event(self, ev: dict[str, Any]) -> None:
        e, s = ev.get("epoch"), ev.get("seq")
        if not isinstance(e, str) or not isinstance(s, int):
            return
        self.r.events += 1
        if e != self.epoch:
            self.r.bad_epoch += 1
            self.r.fail(f"epoch {self.epoch} -> {e} at seq {s} without a recovered: false replay")
            self.epoch, self.last, self.last_id = e, s, ev.get("id")
            return
        if s <= self.last:
            self.r.duplicates += 1
            self.r.fail(f"{e}-{s} after {e}-{self.last}: duplicate or out of order")
            return
        if s > self.last + 1:
            self._seg_missing += s - self.last - 1
            self._seg_gaps.append((self.last, s))
        self.last, self.last_id = s, ev.get("id")

    def _frame(self, f: dict[str, Any]) -> None:
        t = f.get("type")
        if "seq" in f and "epoch" in f:
            self._event(f)
        elif t == "replay":
            if f.get("recovered") is True:
                self.r.resumed += 1
                for ev in f.get("events") or []:
                    self._event(ev)
            else:
                reason = str(f.get("reason"))
                self.r.resyncs[reason] = self.r.resyncs.get(reason, 0) + 1
                self.soak.log(
                    f"dashboard #{self.idx} on {'ab'[self.at or 0]}: recovered: false ({reason}) for since "
                    f"{self.last_id}; the instance is at {f.get('epoch')}-{f.get('latest_seq')}"
                )
                # Start again from where the service says it is now.
                self.epoch, self.last = f.get("epoch"), int(f.get("latest_seq", 0))
                self.last_id = f"{self.epoch}-{self.last}"
        elif t == "missed":
            n = int(f.get("count", 0))
            self.r.missed += n
            self._seg_credit += n
        elif t == "action_result" and self.actor:
            self.soak.admin.ws_action_result(f)
        elif t == "error":
            self.r.fail(f"error frame: {f.get('code')}: {f.get('message')}")

    def _end_segment(self) -> None:
        """A connection ended: its gaps must be covered by its `missed` frames."""
        self.r.gap_missing += self._seg_missing
        if self._seg_missing > self._seg_credit:
            n = self._seg_missing - self._seg_credit
            self.r.unexcused += n
            self.r.fail(f"{n} events missing without a missed frame, gaps (after, next): {self._seg_gaps[:5]}")
        self._seg_missing = self._seg_credit = 0
        self._seg_gaps = []

    # ---- connections ----

    async def _session(self, inst: int, until: float) -> str:
        """One connection to instance `inst`; returns why it ended."""
        base = self.soak.instances[inst].base
        ws = await open_ws(base, EVENTS_PATH, self.token)
        self.ws, self.at = ws, inst
        self.r.connections += 1
        try:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if self.epoch is None:
                # First connection: start exactly at the service's position, so the first
                # event it sends must be the next seq.
                self.epoch, self.last = welcome["epoch"], int(welcome["last_seq"])
                self.last_id = f"{self.epoch}-{self.last}"
            sub = {"type": "subscribe", "subscriptions": ["all"], "since": self.last_id, "request_id": "sub"}
            await ws.send(json.dumps(sub))
            while True:
                now = time.monotonic()
                if self.soak.stopping:
                    return "stopped"
                want = self.soak.want(self)
                if now >= until or (want is not None and want != inst):
                    return "voluntary"
                try:
                    raw = await asyncio.wait_for(ws.recv(), min(1.0, until - now))
                except asyncio.TimeoutError:
                    continue
                self._frame(json.loads(raw))
        except ConnectionClosed:
            return "lost"
        finally:
            self.ws = None
            self._end_segment()
            await ws.close()

    async def run(self, deadline: float) -> None:
        rng = random.Random(self.idx)
        target = self.home
        backoff = 0.2
        n = len(self.soak.instances)
        while not self.soak.stopping and time.monotonic() < deadline:
            # Stay 20-60 s, then leave and resume; 30 % of the resumes go to the other
            # instance (the log is shared, so `since` is valid there too).
            stay = rng.uniform(20, 60) if self.soak.want(self) is None else 3600
            try:
                why = await self._session(target, time.monotonic() + stay)
                backoff = 0.2
            except (OSError, asyncio.TimeoutError, WebSocketException, KeyError, ValueError) as e:
                why = f"connect failed: {type(e).__name__}"
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                target = (target + 1) % n
                continue
            if why == "stopped":
                return
            if why == "voluntary":
                await asyncio.sleep(rng.uniform(0.2, 2.0))
                want = self.soak.want(self)
                if want is not None:
                    target = want
                else:
                    target = self.home if rng.random() < 0.7 else (self.home + 1) % n
            else:  # lost: fail over to the other instance at once, as a load balancer would
                target = (target + 1) % n

    async def node_action(self, action: str, project: str, node: str) -> Optional[str]:
        """From the actor dashboard: a `node_action` frame; its request id."""
        ws = self.ws
        if ws is None:
            return None
        self._rid += 1
        rid = f"act-{self._rid}"
        frame = {"type": "node_action", "action": action, "project_id": project, "node_id": node}
        frame.update(server="default", request_id=rid)
        try:
            await ws.send(json.dumps(frame))
        except ConnectionClosed:
            return None
        return rid
