"""The module interface: what a Python module of the NMS (monitoring, security,
analysis...) uses instead of talking to GNS3. One WebSocket to ``/ws/modules/{name}``
(docs/modules.md#module-protocol) carries everything: node and project actions, reads
from the service's cache, event subscriptions, and the bus (send, broadcast,
request/reply, publish).

The connection is kept: when it drops (the service restarts, the network breaks) it is
opened again with backoff and the event subscriptions are sent again with ``since`` = the
last event received (docs/modules.md#resuming-events), so the events published meanwhile
are handled once, in order, before the live ones; when the service cannot replay them
(a restart without Redis) the handlers of :meth:`ModuleInterface.on_resume_failed` get a
:class:`ResumeFailed` with a fresh topology. Bus messages that arrived meanwhile wait in
the service's offline queue and come first, in order. Calls waiting for an answer when
the connection drops raise :class:`ConnectionLost`.

Handlers run one at a time per kind (bus messages on one task, events on another), in the
order the service sent them, so a handler may itself await calls on the interface."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
import random
from collections.abc import Awaitable, Iterable
from typing import Any, Callable, Optional, Union

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from ._bus import BusCalls
from ._conn import open_ws, resolve
from ._gns3 import Gns3Calls
from .errors import (
    ApiError,
    AuthenticationError,
    ConnectionLost,
    Gns3CentralError,
    PermissionDenied,
    error_from,
)
from .models import JSON, BusMessage, Event, Missed, ResumeFailed, StreamItem, Topology, matches

log = logging.getLogger("gns3central")

TOKEN_ENV = ("GNS3_CENTRAL_MODULE_TOKEN", "GNS3_CENTRAL_TOKEN")
# Close codes after which reconnecting is wrong: the module was deleted (4004), or a newer
# connection of the same module replaced this one (4009).
FINAL_CLOSES = {4004: "the module was deleted", 4009: "replaced by a new connection of the same module"}

EventHandler = Callable[[Event], Union[Awaitable[None], None]]
MessageHandler = Callable[[BusMessage], Any]
ResumeFailedHandler = Callable[[ResumeFailed], Union[Awaitable[None], None]]
MissedHandler = Callable[[Missed], Union[Awaitable[None], None]]


async def _maybe_await(v: Any) -> Any:
    if inspect.isawaitable(v):
        return await v
    return v


class ModuleInterface(BusCalls, Gns3Calls):
    """One module's connection to gns3-central. Make it with :func:`create_gns3_interface`,
    then ``await initialize()`` (or ``async with``).

    ``since`` (an event id, e.g. a :attr:`last_event_id` the module saved before it
    stopped) makes the first subscription replay the events after it."""

    def __init__(
        self,
        name: str,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        request_timeout: float = 10.0,
        reconnect: bool = True,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        since: Optional[str] = None,
    ) -> None:
        self.name = name
        self.url, self._token = resolve(url, token, TOKEN_ENV)
        self.request_timeout = request_timeout
        self.reconnect = reconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.welcome: JSON = {}
        self.connections = 0
        self.closed_reason: Optional[str] = None
        self._ws: Optional[ClientConnection] = None
        self._connected = asyncio.Event()
        self._new_connection = asyncio.Event()
        self._closing = False
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[JSON]] = {}
        self._subs: list[tuple[list[str], EventHandler]] = []
        self._projects: Optional[list[str]] = None
        self._msg_handlers: list[tuple[Optional[frozenset[str]], MessageHandler]] = []
        self._messages: asyncio.Queue[BusMessage] = asyncio.Queue()
        self._events: asyncio.Queue[StreamItem] = asyncio.Queue()
        # Where a new subscription resumes from: the last event received (queued events
        # are handled even when the connection drops), else the first welcome's position.
        self._resume_from: Optional[str] = since
        # Between a subscribe with `since` and its `replay`: events then are in the replay.
        self._awaiting_replay = False
        # The next subscribe resumes (after a reconnection, or with a `since` given here).
        self._resuming = since is not None
        self.last_event_id: Optional[str] = None
        """The id of the last event the handlers were called with."""
        self._resume_failed_handlers: list[ResumeFailedHandler] = []
        self._missed_handlers: list[MissedHandler] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()

    # --- life cycle ---------------------------------------------------------------------

    async def initialize(self) -> ModuleInterface:
        """Connect (raising the service's error for a bad token, or
        :class:`ServiceUnreachable`) and start handling frames."""
        await self._connect()
        self._tasks = [
            asyncio.ensure_future(self._read_loop()),
            asyncio.ensure_future(self._message_loop()),
            asyncio.ensure_future(self._event_loop()),
        ]
        return self

    async def __aenter__(self) -> ModuleInterface:
        return await self.initialize()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_closed(self) -> Optional[str]:
        """Wait until the connection has ended for good (a final close such as 4009, a
        refused reconnect, or :meth:`close`); returns :attr:`closed_reason`."""
        if self._tasks:
            await asyncio.wait({self._tasks[0]})
        return self.closed_reason

    async def close(self) -> None:
        """Close the connection and stop the handlers."""
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._fail_pending(ConnectionLost("the interface was closed"))

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: Optional[float] = None) -> None:
        """Wait until the connection is (again) open."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def wait_connections(self, count: int, timeout: Optional[float] = None) -> None:
        """Wait until the interface has connected ``count`` times in all (``connections``):
        e.g. ``count = connections + 1`` waits for the next reconnection."""

        async def loop() -> None:
            while self.connections < count:
                self._new_connection.clear()
                await self._new_connection.wait()

        await asyncio.wait_for(loop(), timeout)

    async def _connect(self) -> None:
        ws = await open_ws(self.url, f"/ws/modules/{self.name}", self._token, self.request_timeout)
        raw = await asyncio.wait_for(ws.recv(), self.request_timeout)
        welcome = json.loads(raw)
        if welcome.get("type") != "welcome":
            await ws.close()
            raise Gns3CentralError("protocol", f"expected a welcome frame, got {str(raw)[:200]}")
        self.welcome = welcome
        if self._resume_from is None:
            self._resume_from = _event_id(welcome.get("epoch"), welcome.get("last_seq"))
        self._ws = ws
        self._awaiting_replay = False
        self.connections += 1
        self._connected.set()
        self._new_connection.set()
        log.info("gns3central: module %s connected (session %s)", self.name, welcome.get("session_id"))

    def _subscribe_frame(self, names: list[str]) -> JSON:
        """A ``subscribe`` frame; the first one after a reconnection (or with ``since``
        given to the interface) has ``since`` and waits for its replay."""
        frame: JSON = {"type": "subscribe", "subscriptions": names}
        if self._projects is not None:
            frame["projects"] = self._projects
        if self._resuming and self._resume_from is not None:
            frame["since"] = self._resume_from
            self._awaiting_replay = True
        self._resuming = False
        return frame

    async def _subscribe(self, frame: JSON) -> JSON:
        try:
            return await self._call(frame)
        except BaseException:
            if "since" in frame:  # no replay will come
                self._awaiting_replay = False
            raise

    async def _resubscribe(self, frame: JSON) -> None:
        try:
            await self._subscribe(frame)
        except Gns3CentralError as e:
            log.warning("gns3central: module %s could not subscribe again: %s", self.name, e)

    async def _read_loop(self) -> None:
        while True:
            ws = self._ws
            assert ws is not None
            code: Optional[int] = None
            try:
                async for raw in ws:
                    self._on_frame(raw)
            except ConnectionClosed:
                pass
            if ws.close_code is not None:
                code = ws.close_code
            self._connected.clear()
            self._fail_pending(ConnectionLost(f"the connection closed (code {code})", code))
            if self._closing:
                return
            if code in FINAL_CLOSES:
                self.closed_reason = FINAL_CLOSES[code]
                log.warning("gns3central: module %s closed: %s", self.name, self.closed_reason)
                return
            if not self.reconnect:
                self.closed_reason = f"connection closed (code {code})"
                return
            await self._reconnect()

    async def _reconnect(self) -> None:
        delay = self.backoff_initial
        while not self._closing:
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, self.backoff_max)
            try:
                await self._connect()
            except (AuthenticationError, PermissionDenied) as e:
                self.closed_reason = str(e)
                log.error("gns3central: module %s cannot reconnect: %s", self.name, e)
                raise
            except (Gns3CentralError, OSError, asyncio.TimeoutError, ConnectionClosed) as e:
                log.info("gns3central: module %s reconnecting: %s", self.name, e)
                continue
            self._resuming = True
            names = sorted({n for names, _ in self._subs for n in names})
            if names or self._projects is not None:
                # The frame now, before the next frame is read: events that come before
                # its replay are in the replay.
                self._spawn(self._resubscribe(self._subscribe_frame(names)))
            return

    def _spawn(self, coro: Awaitable[Any]) -> None:
        t = asyncio.ensure_future(coro)
        self._background.add(t)
        t.add_done_callback(self._background.discard)

    def _on_frame(self, raw: Union[str, bytes]) -> None:
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "message":
            self._messages.put_nowait(BusMessage.from_json(frame["message"]))
            return
        if isinstance(kind, str) and "." in kind:
            if not self._awaiting_replay:  # else it is in the replay that comes
                ev = Event.from_json(frame)
                self._resume_from = ev.id
                self._events.put_nowait(ev)
            return
        if kind == "replay":
            self._on_replay(frame)
            return
        if kind == "missed":
            self._events.put_nowait(Missed(count=int(frame.get("count", 0)), dropped=dict(frame.get("dropped") or {})))
            return
        rid = frame.get("request_id")
        fut = self._pending.pop(rid, None) if isinstance(rid, int) else None
        if fut is not None:
            if not fut.done():
                fut.set_result(frame)
        elif kind == "error":
            log.warning("gns3central: module %s: %s: %s", self.name, frame.get("code"), frame.get("message"))

    def _on_replay(self, frame: JSON) -> None:
        self._awaiting_replay = False
        if frame.get("recovered", True):
            for e in frame.get("events") or []:
                ev = Event.from_json(e)
                self._resume_from = ev.id
                self._events.put_nowait(ev)
        else:
            topo = frame.get("topology")
            self._events.put_nowait(
                ResumeFailed(
                    reason=str(frame.get("reason", "")),
                    message=str(frame.get("message", "")),
                    topology=Topology.from_json(topo) if isinstance(topo, dict) else None,
                    raw=frame,
                )
            )
        # Every later event has a higher seq (earlier ones were replayed, or do not match).
        self._resume_from = _event_id(frame.get("epoch"), frame.get("latest_seq")) or self._resume_from

    def _fail_pending(self, err: Exception) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(err)

    async def _send_frame(self, frame: JSON) -> None:
        if not self._connected.is_set():  # (wait_for costs a quarter of a send: not when connected)
            await asyncio.wait_for(self._connected.wait(), self.request_timeout)
        assert self._ws is not None
        try:
            await self._ws.send(json.dumps(frame))
        except ConnectionClosed as e:
            raise ConnectionLost(f"the connection closed: {e}") from e

    async def _call(self, frame: JSON, timeout: Optional[float] = None) -> JSON:
        """Send a frame with a fresh ``request_id`` and wait for its answer; an ``error``
        frame raises."""
        rid = next(self._ids)
        frame["request_id"] = rid
        fut: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self._send_frame(frame)
            answer = await asyncio.wait_for(fut, timeout if timeout is not None else self.request_timeout)
        finally:
            self._pending.pop(rid, None)
        if answer.get("type") == "error":
            raise error_from(str(answer.get("code")), str(answer.get("message", "")), answer.get("details"))
        return answer

    # --- handlers -----------------------------------------------------------------------

    async def _message_loop(self) -> None:
        while True:
            msg = await self._messages.get()
            answer: Any = None
            failed: Optional[BaseException] = None
            for types, handler in self._msg_handlers:
                if types is not None and msg.type not in types:
                    continue
                try:
                    r = handler(msg)
                    if inspect.isawaitable(r):
                        r = await r
                except Exception as e:
                    log.exception("gns3central: module %s: message handler failed", self.name)
                    failed = e
                    continue
                if answer is None:
                    answer = r
            if msg.reply_to is not None and (answer is not None or failed is not None):
                await self._answer(msg, answer, failed)

    async def _answer(self, msg: BusMessage, answer: Any, failed: Optional[BaseException]) -> None:
        payload = answer
        if answer is None and failed is not None:
            payload = {"error": {"code": "handler_failed", "message": str(failed)}}
        frame = {"type": "reply", "message": {"to": msg.reply_to, "correlation_id": msg.id, "payload": payload}}
        try:
            await self._send_frame(frame)
        except (ConnectionLost, asyncio.TimeoutError):
            log.warning("gns3central: module %s: reply to %s lost", self.name, msg.id)

    async def _event_loop(self) -> None:
        while True:
            item = await self._events.get()
            if isinstance(item, Event):
                handlers: list[Callable[[Any], Any]] = [h for names, h in self._subs if matches(names, item.type)]
            elif isinstance(item, ResumeFailed):
                handlers = list(self._resume_failed_handlers)
                if not handlers:
                    log.warning("gns3central: module %s: events could not be resumed: %s", self.name, item.message)
            else:
                handlers = list(self._missed_handlers)
                log.warning("gns3central: module %s: the service shed %d events for it", self.name, item.count)
            for handler in handlers:
                try:
                    await _maybe_await(handler(item))
                except Exception:
                    log.exception("gns3central: module %s: event handler failed", self.name)
            if isinstance(item, Event):
                self.last_event_id = item.id

    def on_resume_failed(self, handler: ResumeFailedHandler) -> ResumeFailedHandler:
        """Call ``handler(signal)`` (sync or async) when events could not be resumed after
        a reconnection (the service lost its history: a restart without Redis; or too many
        were missed): ``signal.topology`` is the topology now, to start again from; live
        events follow. Called in order with the events. Usable as a decorator."""
        self._resume_failed_handlers.append(handler)
        return handler

    def on_missed(self, handler: MissedHandler) -> MissedHandler:
        """Call ``handler(signal)`` when the service shed LOW/NORMAL events because this
        module read too slowly (``signal.count``; they are still in the service's
        history). Usable as a decorator."""
        self._missed_handlers.append(handler)
        return handler

    def on_message(self, handler: MessageHandler, types: Optional[Iterable[str]] = None) -> MessageHandler:
        """Call ``handler(message)`` (sync or async) for every bus message (of ``types``
        when given). For a request, the first handler's return value that is not ``None``
        is the reply's payload; a handler that raises answers
        ``{"error": {"code": "handler_failed", "message": ...}}``. Usable as a decorator."""
        # a new list: the message loop iterates over the old one without copying it
        self._msg_handlers = [*self._msg_handlers, (frozenset(types) if types is not None else None, handler)]
        return handler

    def subscribe_to_events(
        self,
        subscriptions: Iterable[str],
        handler: EventHandler,
        projects: Optional[Iterable[str]] = None,
    ) -> asyncio.Task[JSON]:
        """Call ``handler(event)`` (sync or async) for events of ``subscriptions`` (groups
        ``node_status``, ``topology_changes``, ``project_status``, ``server_status``,
        ``all``, exact types, ``*`` globs); ``projects`` limits them to those projects.

        Returns a task: ``await`` it to get the service's ``subscribed`` answer (or its
        error); not awaiting it is fine, as in the original interface."""
        names = list(subscriptions)
        self._subs.append((names, handler))
        if projects is not None:
            self._projects = list(projects)
        task = asyncio.ensure_future(self._subscribe(self._subscribe_frame(names)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def unsubscribe(self, subscriptions: Iterable[str]) -> JSON:
        names = set(subscriptions)
        self._subs = [([n for n in ns if n not in names], h) for ns, h in self._subs]
        self._subs = [(ns, h) for ns, h in self._subs if ns]
        return await self._call({"type": "unsubscribe", "subscriptions": sorted(names)})


def create_gns3_interface(
    name: str,
    url: Optional[str] = None,
    token: Optional[str] = None,
    **options: Any,
) -> ModuleInterface:
    """The original's entry point: a module interface for module ``name``. ``url``
    defaults to ``GNS3_CENTRAL_URL``, ``token`` (the module's own ``g3m_…`` token) to
    ``GNS3_CENTRAL_MODULE_TOKEN`` then ``GNS3_CENTRAL_TOKEN``. Call ``await initialize()``."""
    return ModuleInterface(name, url, token, **options)


__all__ = ["ApiError", "ModuleInterface", "create_gns3_interface"]


def _event_id(epoch: Any, seq: Any) -> Optional[str]:
    """``epoch-seq``: the position of a welcome or a replay's seam."""
    if isinstance(epoch, str) and epoch and isinstance(seq, int) and seq >= 0:
        return f"{epoch}-{seq}"
    return None
