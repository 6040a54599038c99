"""The GNS3 side of the module interface: reads answered from the service's cache
(topology, node status, network summary) and node and project actions, each one frame on
the module's socket (docs/modules.md#module-protocol). A mixin of
:class:`~gns3central.module.ModuleInterface`, which provides the socket (``_call``)."""

from __future__ import annotations

from typing import Optional

from .errors import error_from
from .models import JSON, ActionResult, NodeStatus, Topology


class Gns3Calls:
    """Reads and actions; ``_call`` sends a frame and returns its answer (raising an
    ``error`` answer)."""

    request_timeout: float

    async def _call(self, frame: JSON, timeout: Optional[float] = None) -> JSON:
        raise NotImplementedError

    async def get_topology(self, project_id: Optional[str] = None, server: Optional[str] = None) -> Topology:
        """Every server's topology, or one project's, from the service's cache."""
        frame: JSON = {"type": "request_topology"}
        if project_id is not None:
            frame["project_id"] = project_id
        if server is not None:
            frame["server"] = server
        answer = await self._call(frame)
        topo = answer.get("topology") or {}
        return Topology.from_json(topo)

    async def get_node_status(
        self, node_id: str, project_id: Optional[str] = None, server: Optional[str] = None
    ) -> NodeStatus:
        """A node's status (from the cache). Without ``project_id`` the node is looked up
        in the cached topology."""
        if project_id is None:
            topo = await self.get_topology(server=server)
            node = topo.find_node(node_id)
            if node is None:
                raise error_from("not_found", f"no node {node_id} in the topology", None, 404)
            project_id = str(node.get("project_id"))
        frame: JSON = {"type": "node_status", "project_id": project_id, "node_id": node_id}
        if server is not None:
            frame["server"] = server
        answer = await self._call(frame)
        node_obj = answer.get("node") if isinstance(answer.get("node"), dict) else {}
        assert isinstance(node_obj, dict)
        return NodeStatus(status=answer.get("status"), node=node_obj)

    async def get_network_summary(self) -> JSON:
        """Projects and nodes per status, nodes per type, links, per server, unreachable
        servers."""
        answer = await self._call({"type": "network_summary"})
        summary: JSON = answer.get("summary") or {}
        return summary

    async def _action(self, frame: JSON) -> ActionResult:
        answer = await self._call(frame, timeout=max(self.request_timeout, 60.0))
        if not answer.get("ok", False):
            err = answer.get("error") or {}
            details = err.get("details")
            raise error_from(
                str(err.get("code", "action_failed")), str(err.get("message", "")), details, err.get("status")
            )
        return ActionResult.from_json(answer)

    async def node_action(
        self, project_id: str, node_id: str, action: str, server: Optional[str] = None
    ) -> ActionResult:
        """``start``, ``stop``, ``restart``, ``suspend`` or ``reload`` a node."""
        frame: JSON = {"type": "node_action", "action": action, "project_id": project_id, "node_id": node_id}
        if server is not None:
            frame["server"] = server
        return await self._action(frame)

    async def start_node(self, project_id: str, node_id: str, server: Optional[str] = None) -> ActionResult:
        return await self.node_action(project_id, node_id, "start", server)

    async def stop_node(self, project_id: str, node_id: str, server: Optional[str] = None) -> ActionResult:
        return await self.node_action(project_id, node_id, "stop", server)

    async def restart_node(self, project_id: str, node_id: str, server: Optional[str] = None) -> ActionResult:
        return await self.node_action(project_id, node_id, "restart", server)

    async def project_action(self, project_id: str, action: str, server: Optional[str] = None) -> ActionResult:
        """``open``, ``close``, ``start`` or ``stop`` a project."""
        frame: JSON = {"type": "project_action", "action": action, "project_id": project_id}
        if server is not None:
            frame["server"] = server
        return await self._action(frame)

    async def start_project(self, project_id: str, server: Optional[str] = None) -> ActionResult:
        """Open the project (when closed) and start every node, as the original did."""
        await self.project_action(project_id, "open", server)
        return await self.project_action(project_id, "start", server)

    async def ping(self) -> None:
        await self._call({"type": "ping"})
