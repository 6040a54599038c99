"""A monitoring module: alerts (publishes ``monitoring.alert``) when a node stops, and
answers ``monitoring.status`` requests with what it has seen.

    export GNS3_CENTRAL_URL=http://127.0.0.1:8000
    export GNS3_CENTRAL_MODULE_TOKEN=g3m_...        # from POST /api/v2/modules
    python examples/monitoring_module.py [--name monitoring] [--run-for SECONDS]

Or let it register itself with an admin token: ``--register`` (uses GNS3_CENTRAL_TOKEN).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any, Optional

from gns3central import BusMessage, Event, ResumeFailed, create_gns3_interface, register_module


async def main(name: str, register: bool, run_for: Optional[float]) -> None:
    token = None
    if register:
        token = (await register_module(name)).token
    gns3_interface = create_gns3_interface(name, token=token)
    await gns3_interface.initialize()
    stopped: dict[str, str] = {}
    alerts = 0

    async def handle_gns3_event(event: Event) -> None:
        nonlocal alerts
        if event.type == "node.stopped" and event.node_id:
            stopped[event.node_id] = event.timestamp
            name = event.data.get("name") if isinstance(event.data, dict) else None
            await gns3_interface.publish(
                "alert",
                {"severity": "warning", "message": f"node {name or event.node_id} stopped"},
                project_id=event.project_id,
                node_id=event.node_id,
                server=event.server,
                correlation_id=event.correlation_id,
            )
            alerts += 1
        elif event.type == "node.started" and event.node_id:
            stopped.pop(event.node_id, None)

    def handle_resume_failed(signal: ResumeFailed) -> None:
        # Events were missed (the service restarted without Redis): start again from the
        # topology now. (Events missed across other restarts are replayed: nothing to do.)
        stopped.clear()
        for node in signal.topology.nodes() if signal.topology else []:
            if node.get("status") == "stopped" and node.get("node_id"):
                stopped[str(node["node_id"])] = "unknown"

    def handle_request(msg: BusMessage) -> Optional[dict[str, Any]]:
        if msg.type == "monitoring.status":
            return {"alerts": alerts, "stopped_nodes": sorted(stopped)}
        return None

    await gns3_interface.subscribe_to_events(["node_status"], handle_gns3_event)
    gns3_interface.on_resume_failed(handle_resume_failed)
    gns3_interface.on_message(handle_request)
    summary = await gns3_interface.get_network_summary()
    print(f"{name}: connected; network summary: {summary}", flush=True)
    try:
        if run_for is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(run_for)
    finally:
        await gns3_interface.close()
    print(f"{name}: done; {alerts} alert(s)", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="monitoring")
    p.add_argument("--register", action="store_true", help="register the module first (admin token)")
    p.add_argument("--run-for", type=float, default=None, help="stop after this many seconds")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main(args.name, args.register, args.run_for))
