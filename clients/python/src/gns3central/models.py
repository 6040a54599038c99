"""Typed views of what the service sends: the event envelope, bus messages, topology,
action results, and the signals of an event stream (resume failed, events shed). Each keeps
the JSON it came from in ``raw``, so a field the service adds later is never lost."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Optional, Union

JSON = dict[str, Any]

# Event types per subscription group (docs/websocket.md; actors/src/events/mod.rs).
GROUPS: dict[str, frozenset[str]] = {
    "node_status": frozenset({"node.started", "node.stopped", "node.suspended"}),
    "topology_changes": frozenset(
        {
            "node.created",
            "node.deleted",
            "node.updated",
            "link.created",
            "link.updated",
            "link.deleted",
            "topology.changed",
        }
    ),
    "project_status": frozenset(
        {"project.created", "project.opened", "project.closed", "project.updated", "project.deleted"}
    ),
    "server_status": frozenset({"server.connected", "server.disconnected", "circuit.opened", "circuit.closed"}),
}


def matches(names: Any, event_type: str) -> bool:
    """Whether an event type is selected by subscription names (groups, ``all``, exact
    types, ``*`` globs), as the service's filter decides."""
    for n in names:
        if n == "all" or n == event_type or event_type in GROUPS.get(n, ()):
            return True
        if "*" in n and fnmatch.fnmatchcase(event_type, n):
            return True
    return False


def _opt_str(v: Any) -> Optional[str]:
    return None if v is None else str(v)


# Event and BusMessage are not frozen: a frozen dataclass's __init__ goes through
# object.__setattr__ per field, which shows in the bus's receive rate.
@dataclass
class Event:
    """The event envelope (docs/architecture.md#event-envelope)."""

    id: str
    seq: int
    epoch: str
    type: str
    priority: str
    server: Optional[str]
    project_id: Optional[str]
    node_id: Optional[str]
    timestamp: str
    correlation_id: Optional[str]
    source: str
    data: Any
    raw: JSON = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JSON) -> Event:
        return cls(
            id=str(d["id"]),
            seq=int(d.get("seq", 0)),
            epoch=str(d.get("epoch", "")),
            type=str(d["type"]),
            priority=str(d.get("priority", "")),
            server=_opt_str(d.get("server")),
            project_id=_opt_str(d.get("project_id")),
            node_id=_opt_str(d.get("node_id")),
            timestamp=str(d.get("timestamp", "")),
            correlation_id=_opt_str(d.get("correlation_id")),
            source=str(d.get("source", "")),
            data=d.get("data"),
            raw=d,
        )


@dataclass
class BusMessage:
    """A bus message (docs/modules.md#bus-envelope). ``sender`` is the envelope's ``from``."""

    id: str
    sender: str
    to: str
    type: str
    payload: Any
    correlation_id: Optional[str]
    reply_to: Optional[str]
    ttl: int
    timestamp: str
    raw: JSON = field(repr=False, compare=False)

    @property
    def is_request(self) -> bool:
        """A request waits for an answer (``reply_to`` is set by the bus)."""
        return self.reply_to is not None

    @classmethod
    def from_json(cls, d: JSON) -> BusMessage:
        # The service always sends these fields with these types (the bus envelope).
        return cls(
            d["id"],
            d.get("from", ""),
            d.get("to", ""),
            d.get("type", ""),
            d.get("payload"),
            d.get("correlation_id"),
            d.get("reply_to"),
            d.get("ttl") or 0,
            d.get("timestamp", ""),
            d,
        )


@dataclass(frozen=True)
class SendResult:
    """What the bus did with a message: its ``id``, how many modules took it
    (``accepted``), and by name those that refused it (a broadcast can be refused by
    some)."""

    id: str
    accepted: int
    refused: list[str]

    @classmethod
    def from_json(cls, d: JSON) -> SendResult:
        acc = d.get("accepted")
        ref = d.get("refused")
        return cls(
            id=str(d.get("id", "")),
            accepted=int(acc) if isinstance(acc, int) else 0,
            refused=[str(r) for r in ref] if isinstance(ref, list) else [],
        )


@dataclass(frozen=True)
class Topology:
    """Every server's projects with their nodes and links, as the cache holds them
    (``GET /api/v2/topology``: ``servers`` and the ``unavailable`` ones)."""

    servers: list[JSON]
    unavailable: list[Any]
    raw: JSON = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JSON) -> Topology:
        servers = d.get("servers")
        if servers is None and "projects" in d:  # one server's topology
            servers = [d]
        return cls(servers=list(servers or []), unavailable=list(d.get("unavailable") or []), raw=d)

    def projects(self) -> list[JSON]:
        """Every project entry (``{"project": {...}, "nodes": [...], "links": [...]}``)."""
        return [p for s in self.servers for p in (s.get("projects") or [])]

    def nodes(self) -> list[JSON]:
        """Every node of every project."""
        return [n for p in self.projects() for n in (p.get("nodes") or [])]

    def find_node(self, node_id: str) -> Optional[JSON]:
        """The node with that id, or ``None``."""
        return next((n for n in self.nodes() if n.get("node_id") == node_id), None)


@dataclass(frozen=True)
class ActionResult:
    """A node or project action that GNS3 accepted: its ``correlation_id`` (the events it
    causes carry it), GNS3 ``steps`` and the ``node`` read back afterwards. A refused action
    raises :class:`~gns3central.errors.ApiError` instead."""

    correlation_id: Optional[str]
    server: Optional[str]
    outcome: JSON
    raw: JSON = field(repr=False, compare=False)

    @property
    def node(self) -> Optional[JSON]:
        n = self.outcome.get("node")
        return n if isinstance(n, dict) else None

    @property
    def steps(self) -> list[JSON]:
        s = self.outcome.get("steps")
        return list(s) if isinstance(s, list) else []

    @classmethod
    def from_json(cls, d: JSON) -> ActionResult:
        outcome = d.get("outcome") if isinstance(d.get("outcome"), dict) else d
        assert isinstance(outcome, dict)
        return cls(
            correlation_id=_opt_str(d.get("correlation_id") or outcome.get("correlation_id")),
            server=_opt_str(d.get("server")),
            outcome=outcome,
            raw=d,
        )


@dataclass(frozen=True)
class NodeStatus:
    """A node's ``status`` and the node itself, from the cache."""

    status: Optional[str]
    node: JSON


@dataclass(frozen=True)
class ModuleRegistration:
    """A registered module and its token (shown once by the service)."""

    name: str
    id: str
    token: str
    websocket: str
    raw: JSON = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JSON) -> ModuleRegistration:
        return cls(
            name=str(d["name"]),
            id=str(d.get("id", "")),
            token=str(d["token"]),
            websocket=str(d.get("websocket", "")),
            raw=d,
        )


@dataclass(frozen=True)
class ResumeFailed:
    """An event stream could not resume where it stopped (``replay`` with ``recovered:
    false``: the history was lost, e.g. a restart without Redis). Events in between may be
    missing: start again from ``topology``."""

    reason: str
    message: str
    topology: Optional[Topology]
    raw: JSON = field(repr=False, compare=False)

    recovered: bool = False


@dataclass(frozen=True)
class Missed:
    """The service shed ``count`` LOW/NORMAL events for this slow reader (``missed``)."""

    count: int
    dropped: JSON


StreamItem = Union[Event, ResumeFailed, Missed]
