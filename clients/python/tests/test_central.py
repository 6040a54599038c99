"""`Central`, the client of scripts and dashboards: REST routes and the event stream,
including across restarts of the service with and without Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from service import Redis, Service

from gns3central import Central, Event, ResumeFailed, StreamItem
from gns3central.models import Topology

T = 20.0


async def test_rest_routes(central: Central) -> None:
    status = await central.status()
    assert status["servers"]
    assert [s["name"] for s in await central.servers()] == ["default"]
    assert await central.refresh_topology() is not None
    assert await central.dead_letters(limit=5) is not None
    topo = await central.topology()
    assert isinstance(topo, Topology) and len(topo.projects()) == 2
    project = topo.projects()[0]["project"]["project_id"]
    node = next(n for n in topo.nodes() if n["project_id"] == project)
    assert (await central.topology(server="default")).projects()
    assert [p["project"]["project_id"] for p in (await central.topology(project_id=project)).projects()] == [project]
    assert any(p["project_id"] == project for p in await central.projects())
    assert len(await central.nodes(project)) == 6
    assert (await central.node(project, node["node_id"]))["node_id"] == node["node_id"]
    assert isinstance(await central.links(project), list)

    result = await central.stop_node(project, node["node_id"])
    assert result.correlation_id and result.node and result.node["status"] == "stopped"
    assert (await central.start_node(project, node["node_id"])).node
    assert (await central.project_action(project, "start")).correlation_id

    history = await central.events_history(limit=1000)
    assert any(e.correlation_id == result.correlation_id for e in history)
    assert [e.seq for e in history] == sorted(e.seq for e in history)
    after = await central.events_history(since=history[0].id)
    # later events may have come meanwhile
    assert [e.id for e in after][: len(history) - 1] == [e.id for e in history[1:]]
    assert "by_priority" in await central.events_stats() or await central.events_stats()

    reg = await central.create_module("restmod")
    assert reg.token.startswith("g3m_") and reg.websocket == "/ws/modules/restmod"
    assert (await central.module("restmod"))["connected"] is False
    assert any(m["name"] == "restmod" for m in (await central.modules())["modules"])
    sent = await central.bus_send("restmod", "x.hello", {"a": 1})
    assert sent.accepted == 1
    assert await central.bus_stats()
    await central.delete_module("restmod")


async def _collect(it: AsyncIterator[StreamItem], out: list[StreamItem], until: asyncio.Event) -> None:
    async for item in it:
        out.append(item)
        until.set()


async def _wait_for(out: list[StreamItem], cond: object, flag: asyncio.Event) -> None:
    async def loop() -> None:
        while not cond():  # type: ignore[operator]
            flag.clear()
            await flag.wait()

    await asyncio.wait_for(loop(), T)


async def _some_events(c: Central) -> None:
    """Cause events: stop then start a node."""
    # read from GNS3, not the cache: after a restart the stand-in has new ids, and Redis
    # may still hold the old ones until the cache applies the new server.connected
    project = (await c.projects(fresh=True))[0]["project_id"]
    node = (await c.nodes(project, fresh=True))[0]
    await c.stop_node(node["project_id"], node["node_id"])
    await c.start_node(node["project_id"], node["node_id"])


async def test_events_resume_across_a_restart_with_redis_without_gap_or_duplicate(redis: Redis) -> None:
    svc = Service(redis=redis)
    try:
        async with Central(svc.url, svc.token) as c:
            out: list[StreamItem] = []
            flag = asyncio.Event()
            task = asyncio.ensure_future(_collect(c.events(["all"], backoff_initial=0.05), out, flag))
            await _some_events(c)
            await _wait_for(out, lambda: sum(isinstance(e, Event) and e.type == "node.started" for e in out) >= 1, flag)
            before = len(out)
            started = sum(isinstance(e, Event) and e.type == "node.started" for e in out)
            # Same Redis: same epoch, history kept. The restart runs beside the stream, which
            # keeps reconnecting every 50 ms: the new instance serves only once its cluster
            # bridge has loaded the shared epoch, so no resume meets a fresh local epoch.
            await asyncio.to_thread(svc.restart)
            await _some_events(c)
            # The action answers before its event is in the shared history (it goes through
            # Redis and back): wait for the new node.started, then for the history's last.
            await _wait_for(
                out, lambda: sum(isinstance(e, Event) and e.type == "node.started" for e in out) > started, flag
            )
            last_id = (await c.events_history(limit=1))[-1].id
            await _wait_for(out, lambda: any(isinstance(e, Event) and e.id == last_id for e in out), flag)
            task.cancel()
            assert not [e.raw for e in out if isinstance(e, ResumeFailed)]
            events = [e for e in out if isinstance(e, Event)]
            assert len(events) > before
            seqs = [e.seq for e in events]
            assert len({e.epoch for e in events}) == 1
            # Every event of the shared history, once, in order: no gap, no duplicate.
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
            history = await c.events_history(since=events[0].id, limit=1000)
            assert [e.id for e in history] == [e.id for e in events[1:]]
    finally:
        svc.close()


async def test_events_across_a_restart_without_redis_report_resume_failed_with_topology() -> None:
    svc = Service()
    try:
        async with Central(svc.url, svc.token) as c:
            out: list[StreamItem] = []
            flag = asyncio.Event()
            task = asyncio.ensure_future(_collect(c.events(["all"], backoff_initial=0.05), out, flag))
            await _some_events(c)
            await _wait_for(out, lambda: any(isinstance(e, Event) for e in out), flag)
            epoch = next(e for e in out if isinstance(e, Event)).epoch
            await asyncio.to_thread(svc.restart)  # history in memory: lost
            await _wait_for(out, lambda: any(isinstance(e, ResumeFailed) for e in out), flag)
            lost = next(e for e in out if isinstance(e, ResumeFailed))
            assert lost.recovered is False and lost.reason == "other_epoch"
            assert lost.topology is not None and len(lost.topology.projects()) == 2
            await _some_events(c)
            await _wait_for(out, lambda: isinstance(out[-1], Event) and out[-1].epoch != epoch, flag)
            task.cancel()
    finally:
        svc.close()


@pytest.mark.parametrize("since", [None])
async def test_events_filter_by_subscription(central: Central, since: None) -> None:
    out: list[StreamItem] = []
    flag = asyncio.Event()
    task = asyncio.ensure_future(_collect(central.events(["node_status"], since=since), out, flag))
    await asyncio.sleep(0)
    await _some_events(central)
    await _wait_for(out, lambda: len(out) >= 2, flag)
    task.cancel()
    assert all(isinstance(e, Event) and e.type.startswith("node.") for e in out)
