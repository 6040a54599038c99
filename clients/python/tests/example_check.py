"""Runs examples/monitoring_module.py against ``serve --test-mode`` and checks that it
alerts when a node stops and answers ``monitoring.status``. A plain script (scripts/test
runs it with the wheel installed in a fresh venv, without pytest) and a pytest case
(tests/test_examples.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))

from service import Service

from gns3central import Central, Event

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "monitoring_module.py"


async def check(svc: Service) -> None:
    async with Central(svc.url, svc.token) as c:
        reg = await c.create_module("monitoring")
        env = dict(os.environ, GNS3_CENTRAL_URL=svc.url, GNS3_CENTRAL_MODULE_TOKEN=reg.token)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLE), "--run-for", "30", env=env, stdout=subprocess.PIPE
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert b"connected" in line, line
            # resume from the latest event: the alert is replayed if it comes before the
            # subscription is registered
            latest = (await c.events_history(limit=1))[-1].id
            alerts = c.events(["monitoring.*"], since=latest)
            first = asyncio.ensure_future(alerts.__anext__())
            project = (await c.projects())[0]["project_id"]
            node = next(n for n in await c.nodes(project) if n["status"] == "started")
            await c.stop_node(project, node["node_id"])
            alert = await asyncio.wait_for(first, 20)
            assert isinstance(alert, Event) and alert.type == "monitoring.alert", alert
            assert alert.node_id == node["node_id"] and alert.source == "module"
            reply = await c.bus_request("monitoring", "monitoring.status", {}, timeout=5)
            assert node["node_id"] in reply["payload"]["stopped_nodes"], reply
            await alerts.aclose()
        finally:
            proc.terminate()
            await proc.wait()


if __name__ == "__main__":
    svc = Service()
    try:
        asyncio.run(check(svc))
    finally:
        svc.close()
    print("example module: ok")
