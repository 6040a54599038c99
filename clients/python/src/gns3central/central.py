"""`Central`: the API consumer's client for scripts and dashboards. The REST routes
(docs/api.md) as methods that return JSON or typed models and raise the service's errors,
and :meth:`Central.events`, the dashboard socket (docs/websocket.md) as an async iterator
that reconnects with backoff and resumes with ``since`` so that no event is lost or
repeated across a restart of the service."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Iterable
from typing import Any, Optional

import httpx
from websockets.exceptions import ConnectionClosed

from ._conn import open_ws, resolve
from .errors import (
    ApiError,
    AuthenticationError,
    Gns3CentralError,
    PermissionDenied,
    ServiceUnavailable,
    ServiceUnreachable,
    error_from,
    error_from_body,
)
from .models import (
    JSON,
    ActionResult,
    Event,
    Missed,
    ModuleRegistration,
    ResumeFailed,
    SendResult,
    StreamItem,
    Topology,
)

TOKEN_ENV = ("GNS3_CENTRAL_TOKEN",)


class Central:
    """A client of one gns3-central instance.

    ``url`` and ``token`` default to ``GNS3_CENTRAL_URL`` and ``GNS3_CENTRAL_TOKEN``. Use it
    as ``async with Central(...) as c:`` (or call :meth:`close`).
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: float = 30.0,
        default_server: Optional[str] = None,
    ) -> None:
        self.url, self.token = resolve(url, token, TOKEN_ENV)
        self.timeout = timeout
        self.default_server = default_server or "default"
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
        )

    async def __aenter__(self) -> Central:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # --- plumbing -------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, *, json_body: Any = None, params: Any = None, fresh: bool = False
    ) -> Any:
        # `Cache-Control: no-cache` makes the service read GNS3 instead of its cache
        # (docs/api.md, "Caching and conditional reads").
        headers = {"Cache-Control": "no-cache"} if fresh else None
        try:
            r = await self._http.request(method, path, json=json_body, params=params, headers=headers)
        except httpx.TransportError as e:
            raise ServiceUnreachable(self.url, e) from e
        body: Any
        try:
            body = r.json() if r.content else None
        except ValueError:
            body = r.text
        if r.status_code >= 400:
            err = error_from_body(body, r.status_code)
            if isinstance(err, ServiceUnavailable) and "retry-after" in r.headers:
                try:
                    err.retry_after = float(r.headers["retry-after"])
                except ValueError:
                    pass
            raise err
        return body

    def _server(self, server: Optional[str]) -> str:
        return server or self.default_server

    # --- status, servers, projects ---------------------------------------------------

    async def status(self) -> JSON:
        """``GET /api/v2/status``: version, uptime, each server's state."""
        r: JSON = await self._call("GET", "/api/v2/status")
        return r

    async def servers(self) -> list[JSON]:
        r: list[JSON] = await self._call("GET", "/api/v2/servers")
        return r

    async def projects(self, server: Optional[str] = None, *, fresh: bool = False) -> list[JSON]:
        """The server's projects, from the service's cache; ``fresh=True`` reads GNS3."""
        r: list[JSON] = await self._call("GET", f"/api/v2/servers/{self._server(server)}/projects", fresh=fresh)
        return r

    async def nodes(self, project_id: str, server: Optional[str] = None, *, fresh: bool = False) -> list[JSON]:
        """A project's nodes, from the service's cache; ``fresh=True`` reads GNS3."""
        path = f"/api/v2/servers/{self._server(server)}/projects/{project_id}/nodes"
        r: list[JSON] = await self._call("GET", path, fresh=fresh)
        return r

    async def node(self, project_id: str, node_id: str, server: Optional[str] = None, *, fresh: bool = False) -> JSON:
        """One node, from the service's cache; ``fresh=True`` reads GNS3."""
        path = f"/api/v2/servers/{self._server(server)}/projects/{project_id}/nodes/{node_id}"
        r: JSON = await self._call("GET", path, fresh=fresh)
        return r

    async def links(self, project_id: str, server: Optional[str] = None, *, fresh: bool = False) -> list[JSON]:
        """A project's links, from the service's cache; ``fresh=True`` reads GNS3."""
        path = f"/api/v2/servers/{self._server(server)}/projects/{project_id}/links"
        r: list[JSON] = await self._call("GET", path, fresh=fresh)
        return r

    # --- topology (from the cache) -------------------------------------------------------

    async def topology(self, server: Optional[str] = None, project_id: Optional[str] = None) -> Topology:
        """Every server's topology, one server's, or one project's, from the cache."""
        if project_id is not None:
            path = f"/api/v2/servers/{self._server(server)}/projects/{project_id}/topology"
            return Topology.from_json(await self._call("GET", path))
        if server is not None:
            return Topology.from_json(await self._call("GET", f"/api/v2/servers/{server}/topology"))
        return Topology.from_json(await self._call("GET", "/api/v2/topology"))

    async def refresh_topology(self, server: Optional[str] = None, project_id: Optional[str] = None) -> JSON:
        """(admin) Drop the cached entries and read GNS3 again."""
        body = {k: v for k, v in (("server", server), ("project_id", project_id)) if v is not None}
        r: JSON = await self._call("POST", "/api/v2/topology/refresh", json_body=body or None)
        return r

    # --- actions (operator) --------------------------------------------------------------

    async def node_action(
        self, project_id: str, node_id: str, action: str, server: Optional[str] = None
    ) -> ActionResult:
        """``start``, ``stop``, ``restart``, ``suspend`` or ``reload`` a node."""
        path = f"/api/v2/servers/{self._server(server)}/projects/{project_id}/nodes/{node_id}/actions/{action}"
        return ActionResult.from_json(await self._call("POST", path))

    async def start_node(self, project_id: str, node_id: str, server: Optional[str] = None) -> ActionResult:
        return await self.node_action(project_id, node_id, "start", server)

    async def stop_node(self, project_id: str, node_id: str, server: Optional[str] = None) -> ActionResult:
        return await self.node_action(project_id, node_id, "stop", server)

    async def restart_node(self, project_id: str, node_id: str, server: Optional[str] = None) -> ActionResult:
        return await self.node_action(project_id, node_id, "restart", server)

    async def project_action(self, project_id: str, action: str, server: Optional[str] = None) -> ActionResult:
        """``open``, ``close``, ``start`` or ``stop`` a project."""
        path = f"/api/v2/servers/{self._server(server)}/projects/{project_id}/actions/{action}"
        return ActionResult.from_json(await self._call("POST", path))

    # --- events ----------------------------------------------------------------------------

    async def events_history(
        self,
        since: Optional[str] = None,
        limit: Optional[int] = None,
        types: Optional[Iterable[str]] = None,
        projects: Optional[Iterable[str]] = None,
    ) -> list[Event]:
        """``GET /api/v2/events``: after ``since``, or the most recent ``limit``."""
        params: dict[str, Any] = {}
        if since is not None:
            params["since"] = since
        if limit is not None:
            params["limit"] = limit
        if types is not None:
            params["types"] = ",".join(types)
        if projects is not None:
            params["projects"] = ",".join(projects)
        body = await self._call("GET", "/api/v2/events", params=params)
        items = body.get("events", []) if isinstance(body, dict) else body
        return [Event.from_json(e) for e in items]

    async def events_stats(self) -> JSON:
        r: JSON = await self._call("GET", "/api/v2/events/stats")
        return r

    async def dead_letters(self, limit: Optional[int] = None) -> Any:
        return await self._call("GET", "/api/v2/events/dead-letters", params={"limit": limit} if limit else None)

    # --- modules and bus ------------------------------------------------------------------

    async def create_module(self, name: str) -> ModuleRegistration:
        """(admin) Register a remote module; the answer holds its token, shown once."""
        return ModuleRegistration.from_json(await self._call("POST", "/api/v2/modules", json_body={"name": name}))

    async def delete_module(self, name: str) -> None:
        """(admin) Revoke a module's token and close its connection (4004)."""
        await self._call("DELETE", f"/api/v2/modules/{name}")

    async def modules(self) -> JSON:
        """Every module's status (``GET /api/v2/modules``)."""
        r: JSON = await self._call("GET", "/api/v2/modules")
        return r

    async def module(self, name: str) -> JSON:
        r: JSON = await self._call("GET", f"/api/v2/modules/{name}")
        return r

    async def bus_send(self, to: str, type: str, payload: Any = None, *, ttl_ms: Optional[int] = None) -> SendResult:
        """(operator) Put a message on the bus as ``api``."""
        body: JSON = {"to": to, "type": type, "payload": payload}
        if ttl_ms is not None:
            body["ttl"] = ttl_ms
        return SendResult.from_json(await self._call("POST", "/api/v2/bus/messages", json_body=body))

    async def bus_request(self, to: str, type: str, payload: Any = None, *, timeout: float = 5.0) -> JSON:
        """(operator) A bus request from ``api``: the reply message."""
        body = {"to": to, "type": type, "payload": payload, "timeout_ms": int(timeout * 1000)}
        r: JSON = await self._call("POST", "/api/v2/bus/messages", json_body=body)
        return r

    async def bus_stats(self) -> JSON:
        r: JSON = await self._call("GET", "/api/v2/bus/stats")
        return r

    # --- the event stream ---------------------------------------------------------------

    async def events(
        self,
        subscriptions: Iterable[str] = ("all",),
        projects: Optional[Iterable[str]] = None,
        since: Optional[str] = None,
        *,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        give_up_after: Optional[float] = None,
    ) -> AsyncIterator[StreamItem]:
        """Live events on ``/ws/gns3/events/``, forever.

        Yields :class:`Event` objects; when the connection drops (the service restarts,
        the network breaks) it reconnects with exponential backoff (``backoff_initial`` to
        ``backoff_max`` seconds, with jitter) and resumes with ``since`` = the last event
        seen, so nothing is missed or repeated. When the service cannot resume (history
        lost: a restart without Redis) it yields :class:`ResumeFailed` with a fresh
        topology, then live events; :class:`Missed` when it shed events for a slow reader.

        The first connection's failure raises at once (bad token, service down); later
        ones are retried, for at most ``give_up_after`` seconds in a row when given.
        Credentials refused on a reconnect raise too.
        """
        names = list(subscriptions)
        project_list = list(projects) if projects is not None else None
        last = since
        delay = backoff_initial
        first = True
        down_since: Optional[float] = None
        loop = asyncio.get_running_loop()
        rid = itertools.count(1)
        while True:
            try:
                ws = await open_ws(self.url, "/ws/gns3/events/", self.token, self.timeout)
            except (AuthenticationError, PermissionDenied):
                raise
            except Gns3CentralError:
                if first:
                    raise
                now = loop.time()
                down_since = down_since if down_since is not None else now
                if give_up_after is not None and now - down_since > give_up_after:
                    raise
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, backoff_max)
                continue
            first = False
            try:
                sub: JSON = {"type": "subscribe", "subscriptions": names, "request_id": next(rid)}
                if project_list is not None:
                    sub["projects"] = project_list
                if last is not None:
                    sub["since"] = last
                await ws.send(json.dumps(sub))
                async for raw in ws:
                    frame = json.loads(raw)
                    kind = str(frame.get("type", ""))
                    if "." in kind:
                        ev = Event.from_json(frame)
                        last = ev.id
                        yield ev
                    elif kind == "replay":
                        delay, down_since = backoff_initial, None
                        seam = _event_id(frame.get("epoch"), frame.get("latest_seq"))
                        if frame.get("recovered", True):
                            for e in frame.get("events") or []:
                                ev = Event.from_json(e)
                                last = ev.id
                                yield ev
                        else:
                            topo = frame.get("topology")
                            yield ResumeFailed(
                                reason=str(frame.get("reason", "")),
                                message=str(frame.get("message", "")),
                                topology=Topology.from_json(topo) if isinstance(topo, dict) else None,
                                raw=frame,
                            )
                        last = seam or last
                    elif kind == "welcome" and last is None:
                        # Resume point if this first connection drops before any event.
                        last = _event_id(frame.get("epoch"), frame.get("last_seq"))
                    elif kind == "subscribed":
                        delay, down_since = backoff_initial, None
                    elif kind == "missed":
                        yield Missed(count=int(frame.get("count", 0)), dropped=dict(frame.get("dropped") or {}))
                    elif kind == "error":
                        raise error_from(str(frame.get("code")), str(frame.get("message", "")), frame)
            except ConnectionClosed:
                pass
            except OSError:
                pass
            except ApiError:
                await ws.close()
                raise
            finally:
                if ws.state.name != "CLOSED":
                    await ws.close()


def _event_id(epoch: Any, seq: Any) -> Optional[str]:
    """``epoch-seq``, the id of the event at a seam, when there is one (seq > 0)."""
    if isinstance(epoch, str) and isinstance(seq, int) and seq > 0:
        return f"{epoch}-{seq}"
    return None
