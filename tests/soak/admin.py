"""The soak's own actions through the service, each remembered so that the audit trail
(`GET /api/v2/audit`, docs/operations.md#audit-trail) can be checked to hold every one:
REST node actions and `PATCH /api/v2/config` on both instances, the actor dashboard's
`node_action` frames, a module's `node_action` frames; plus bus messages sent over HTTP
(`POST /api/v2/bus/messages`, sender `api`) and the dead letters read as they come."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

import httpx


@dataclass
class Action:
    action: str  # node.stop, config.patch...
    via: str  # rest, websocket, module
    who: str
    inst: str  # which instance answered
    at: float  # when the answer came (monotonic)
    outcome: str = "ok"
    corr: Optional[str] = None
    node: Optional[str] = None
    code: Optional[str] = None


@dataclass
class HttpBus:
    """Bus messages the soak sent over REST, per target."""

    accepted: dict[str, set[str]] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)


class Admin:
    def __init__(self, soak: Any, token: str):
        self.soak = soak
        self.token = token
        self.clients = [
            httpx.AsyncClient(
                base_url=i.base, headers={"Authorization": f"Bearer {token}"}, timeout=10, trust_env=False
            )
            for i in soak.instances
        ]
        self.made: list[Action] = []
        self.unanswered: Counter[str] = Counter()  # sent, no answer (connection or instance gone)
        self.http_bus = HttpBus()
        self.dead: dict[str, tuple[str, str]] = {}  # message id -> (module, reason)
        self.targets: list[tuple[str, str]] = []  # (project, node) of open projects
        self._ws_pending: dict[str, str] = {}  # actor dashboard's request id -> action
        self._mod_pending: dict[str, str] = {}
        self.rng = random.Random(14)

    async def close(self) -> None:
        for c in self.clients:
            await c.aclose()

    async def get(self, inst: int, path: str, **kw: Any) -> Optional[Any]:
        try:
            r = await self.clients[inst].get(path, **kw)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    async def heap(self, inst: int) -> int:
        """`gns3central_heap_bytes` (glibc's mallinfo2: what the service holds) in kB, 0
        when not exposed."""
        try:
            r = await self.clients[inst].get("/metrics")
        except httpx.HTTPError:
            return 0
        for line in r.text.splitlines():
            if line.startswith("gns3central_heap_bytes "):
                return int(float(line.split()[1]) / 1024)
        return 0

    def up(self) -> list[int]:
        return [i for i, inst in enumerate(self.soak.instances) if self.soak.ready[i]]

    async def refresh_targets(self) -> None:
        for inst in self.up():
            projects = await self.get(inst, "/api/v2/servers/default/projects")
            if not isinstance(projects, list):
                continue
            found = []
            for p in projects:
                if p.get("status") != "opened":
                    continue
                nodes = await self.get(inst, f"/api/v2/servers/default/projects/{p['project_id']}/nodes")
                found += [(p["project_id"], n["node_id"]) for n in nodes or [] if "node_id" in n]
            if found:
                self.targets = found
                return

    def pick(self) -> Optional[tuple[str, str]]:
        return self.rng.choice(self.targets) if self.targets else None

    # ---- the actions ----

    async def rest_node_action(self, inst: int) -> None:
        t = self.pick()
        if t is None:
            return
        action = self.rng.choice(["start", "stop"])
        path = f"/api/v2/servers/default/projects/{t[0]}/nodes/{t[1]}/actions/{action}"
        name = self.soak.instances[inst].name
        try:
            r = await self.clients[inst].post(path, json={})
        except httpx.HTTPError:
            self.unanswered[f"node.{action}"] += 1
            return
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        a = Action(f"node.{action}", "rest", "soak-admin", name, time.monotonic(), node=t[1])
        if r.status_code == 200:
            a.corr = body.get("correlation_id")
        else:
            a.outcome = "error"
            err = body.get("error") or {}
            a.code = err.get("code")
            a.corr = (err.get("details") or {}).get("correlation_id")
        self.made.append(a)

    async def patch_config(self, inst: int) -> None:
        ttl = self.rng.choice([30, 31])
        try:
            r = await self.clients[inst].patch("/api/v2/config", json={"cache": {"ttl": ttl}})
        except httpx.HTTPError:
            self.unanswered["config.patch"] += 1
            return
        outcome = "ok" if r.status_code == 200 else "error"
        self.made.append(
            Action("config.patch", "rest", "soak-admin", self.soak.instances[inst].name, time.monotonic(), outcome)
        )

    async def ws_node_action(self, dash: Any) -> None:
        t = self.pick()
        if t is None:
            return
        action = self.rng.choice(["start", "stop"])
        rid = await dash.node_action(action, t[0], t[1])
        if rid is None:
            return
        self._ws_pending[rid] = f"node.{action}"

    def ws_action_result(self, f: dict[str, Any]) -> None:
        action = self._ws_pending.pop(str(f.get("request_id")), None)
        if action is None:
            return
        self.made.append(self._from_result(f, action, "websocket", "soak-admin"))

    async def module_node_action(self, module: Any) -> None:
        t = self.pick()
        if t is None or module.conn is None:
            return
        action = self.rng.choice(["start", "stop"])
        rid = await module.node_action(action, t[0], t[1])
        if rid is not None:
            self._mod_pending[rid] = f"node.{action}"

    def module_action_result(self, name: str, rid: str, f: dict[str, Any]) -> None:
        action = self._mod_pending.pop(rid, None)
        if action is not None:
            self.made.append(self._from_result(f, action, "module", name))

    def _from_result(self, f: dict[str, Any], action: str, via: str, who: str) -> Action:
        a = Action(action, via, who, "?", time.monotonic(), corr=f.get("correlation_id"))
        if not f.get("ok"):
            a.outcome = "error"
            a.code = (f.get("error") or {}).get("code")
        return a

    async def http_bus_send(self, inst: int, to: str) -> None:
        body = {"to": to, "type": "soak.http", "payload": {"via": "rest"}}
        try:
            r = await self.clients[inst].post("/api/v2/bus/messages", json=body)
        except httpx.HTTPError:
            self.http_bus.unknown[to] += 1
            return
        code = ""
        if r.status_code != 202 and r.headers.get("content-type", "").startswith("application/json"):
            code = (r.json().get("error") or {}).get("code", "")
        if r.status_code == 202:
            self.http_bus.accepted.setdefault(to, set()).add(r.json()["id"])
        elif code in ("module_offline", "inbox_full"):  # refused, counted for it
            self.http_bus.refused[to] += 1
        elif code == "bus_unavailable":  # the shared bus without Redis: may not be counted
            self.http_bus.unknown[to] += 1
        else:
            self.soak.failures.append(f"POST /api/v2/bus/messages to {to}: {r.status_code} {r.text[:200]}")

    async def poll_dead_letters(self, insts: list[int]) -> None:
        for inst in insts:
            page = await self.get(inst, "/api/v2/bus/dead-letters", params={"limit": 1000})
            for d in page or []:
                m = d.get("message") or {}
                if "id" in m:
                    self.dead[m["id"]] = (d.get("module", "?"), d.get("reason", "?"))

    # ---- the audit check ----

    async def audit_records(self, inst: int, deadline: float) -> tuple[list[dict[str, Any]], str]:
        """Every record, newest first, once no instance holds any in its spool (bounded)."""
        while time.monotonic() < deadline:
            spooled = []
            for i in self.up():
                page = await self.get(i, "/api/v2/audit", params={"limit": 1})
                spooled.append(page.get("spooled", 1) if isinstance(page, dict) else 1)
            if all(s == 0 for s in spooled):
                break
            await asyncio.sleep(0.5)
        records: list[dict[str, Any]] = []
        before: Optional[str] = None
        for _ in range(400):  # at most 200,000 records
            params: dict[str, Any] = {"limit": 500}
            if before:
                params["before"] = before
            page = await self.get(inst, "/api/v2/audit", params=params)
            if not isinstance(page, dict):
                return records, "the audit trail could not be read"
            if page.get("partial"):
                return records, "the audit page is partial (Redis unreachable)"
            records += page.get("records") or []
            before = page.get("next_before")
            if not before:
                break
        return records, ""

    @staticmethod
    def key(action: str, via: str, who: str, corr: Optional[str], outcome: str, code: Optional[str]) -> tuple:
        return (action, via, who, corr, outcome, code if outcome == "error" else None)

    def missing_in(self, records: list[dict[str, Any]]) -> tuple[list[Action], int]:
        """The soak's actions with no record (each record used once); and how many records
        matched more than once (the spool may write a record twice: at least once)."""
        have: Counter[tuple] = Counter()
        for r in records:
            corr = r.get("correlation_id")
            if r.get("action") == "config.patch":
                corr = None
            have[self.key(r["action"], r["via"], r["who"], corr, r["outcome"], r.get("error_code"))] += 1
        missing = []
        for a in self.made:
            k = self.key(a.action, a.via, a.who, a.corr, a.outcome, a.code)
            if have[k] > 0:
                have[k] -= 1
            else:
                missing.append(a)
        return missing, 0
