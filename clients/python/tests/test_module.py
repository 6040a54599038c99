"""The module interface against the real service (``serve --test-mode``): reads from the
cache, actions, events, the bus, and a module killed mid-stream."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
from service import Service

from gns3central import (
    BusMessage,
    Central,
    Event,
    ModuleInterface,
    NotFound,
    PermissionDenied,
    ReplyTimeout,
    create_gns3_interface,
    register_module,
)

T = 15.0  # bound on every wait
_names = itertools.count(1)


async def new_module(service: Service, prefix: str, **opts: object) -> ModuleInterface:
    reg = await register_module(f"{prefix}{next(_names)}", service.url, service.token)
    assert reg.token.startswith("g3m_")
    m = create_gns3_interface(reg.name, url=service.url, token=reg.token, **opts)
    await asyncio.wait_for(m.initialize(), T)
    return m


@pytest.fixture
async def pair(service: Service) -> AsyncIterator[tuple[ModuleInterface, ModuleInterface]]:
    a = await new_module(service, "alpha")
    b = await new_module(service, "beta")
    yield a, b
    await a.close()
    await b.close()


async def test_reads_come_from_the_cache_and_actions_report_their_correlation(service: Service) -> None:
    m = await new_module(service, "monitoring")
    try:
        assert m.welcome["module"] == m.name
        topo = await m.get_topology()
        nodes = topo.nodes()
        assert len(topo.projects()) == 2 and len(nodes) == 12
        node = nodes[0]
        pid, nid = node["project_id"], node["node_id"]
        one = await m.get_topology(project_id=pid)
        assert [p["project"]["project_id"] for p in one.projects()] == [pid]

        summary = await m.get_network_summary()
        assert summary, "the summary is not empty"

        seen: asyncio.Queue[Event] = asyncio.Queue()
        sub = m.subscribe_to_events(["node_status"], seen.put_nowait)
        assert (await asyncio.wait_for(sub, T))["type"] == "subscribed"

        stopped = await m.stop_node(pid, nid)
        assert stopped.correlation_id and stopped.node and stopped.node["status"] == "stopped"
        while True:  # the event the action caused carries its correlation id
            ev = await asyncio.wait_for(seen.get(), T)
            if ev.node_id == nid and ev.correlation_id == stopped.correlation_id:
                assert ev.type == "node.stopped"
                break
        status = await m.get_node_status(nid)  # project looked up in the cached topology
        assert status.status == "stopped" and status.node["node_id"] == nid
        assert (await m.get_node_status(nid, project_id=pid)).status == "stopped"

        started = await m.start_node(pid, nid)
        assert started.node and started.node["status"] == "started"
        restarted = await m.restart_node(pid, nid)
        assert [s["action"] for s in restarted.steps] == ["stop", "start"]
        project = await m.start_project(pid)
        assert project.correlation_id

        with pytest.raises(NotFound):
            await m.get_node_status("00000000-0000-4000-8000-000000000000")
    finally:
        await m.close()


async def test_async_handlers_get_events_of_their_subscription_only(service: Service, central: Central) -> None:
    m = await new_module(service, "watch")
    try:
        got: asyncio.Queue[Event] = asyncio.Queue()

        async def on_event(ev: Event) -> None:
            await got.put(ev)

        await asyncio.wait_for(m.subscribe_to_events(["node_status"], on_event), T)
        other = await new_module(service, "pub")
        await asyncio.wait_for(m.subscribe_to_events([f"{other.name}.*"], on_event), T)
        await other.publish("alert", {"cpu": 97})
        ev = await asyncio.wait_for(got.get(), T)
        while ev.source != "module":
            ev = await asyncio.wait_for(got.get(), T)
        assert (ev.type, ev.data) == (f"{other.name}.alert", {"cpu": 97})
        await other.close()
    finally:
        await m.close()


async def test_request_reply_send_and_broadcast_between_two_modules(
    pair: tuple[ModuleInterface, ModuleInterface],
) -> None:
    a, b = pair
    received: asyncio.Queue[BusMessage] = asyncio.Queue()

    def sync_handler(msg: BusMessage) -> object:
        received.put_nowait(msg)
        return {"status": "ok", "asked": msg.payload} if msg.type == "monitoring.status" else None

    b.on_message(sync_handler)

    async def async_handler(msg: BusMessage) -> object:
        await asyncio.sleep(0)
        return {"double": msg.payload["n"] * 2}

    b.on_message(async_handler, types=["math.double"])

    reply = await a.request(b.name, "monitoring.status", {"q": 1}, timeout=5)
    assert reply.payload == {"status": "ok", "asked": {"q": 1}}
    assert reply.sender == b.name and reply.correlation_id
    assert (await a.request(b.name, "math.double", {"n": 21})).payload == {"double": 42}

    sent = await a.send(b.name, "note.hello", {"i": 1})
    assert sent is not None and sent.accepted == 1 and sent.refused == []
    msg = await asyncio.wait_for(received.get(), T)
    while msg.type != "note.hello":
        msg = await asyncio.wait_for(received.get(), T)
    assert (msg.sender, msg.payload, msg.is_request) == (a.name, {"i": 1}, False)

    result = await a.broadcast("note.all", {"x": True})
    assert result.accepted >= 1 and result.refused == []
    msg = await asyncio.wait_for(received.get(), T)
    assert (msg.type, msg.sender) == ("note.all", a.name)

    async def explicit(msg: BusMessage) -> None:  # answers with reply() instead of returning
        await b.reply(msg, {"explicit": True})

    b.on_message(explicit, types=["ask.explicit"])
    assert (await a.request(b.name, "ask.explicit", {})).payload == {"explicit": True}
    assert (await b.unsubscribe(["nothing.*"]))["type"] == "subscribed"
    await a.ping()

    with pytest.raises(ReplyTimeout) as e:
        await a.request(b.name, "nobody.answers", {}, timeout=0.3)
    assert e.value.code == "reply_timeout"
    with pytest.raises(NotFound) as nf:
        await a.send("nosuchmodule", "x.y", {})
    assert nf.value.code == "unknown_module"
    with pytest.raises(PermissionDenied) as pd:
        await a._call({"type": "publish", "event": {"type": "other.alert"}})
    assert pd.value.code == "forbidden_namespace"


async def test_a_killed_module_reconnects_and_gets_its_offline_queue_in_order(
    service: Service, central: Central
) -> None:
    sender = await new_module(service, "sender")
    victim = await new_module(service, "victim", backoff_initial=2.0, backoff_max=2.0)
    got: list[int] = []
    first_four = asyncio.Event()
    arrived = asyncio.Event()

    def on_msg(msg: BusMessage) -> None:
        got.append(msg.payload["n"])
        if len(got) == 4:
            first_four.set()
        if len(got) == 12:
            arrived.set()

    victim.on_message(on_msg)
    try:
        for n in range(1, 5):
            await sender.send(victim.name, "seq.n", {"n": n})
        # (what was on the wire when the connection is cut is lost: no acknowledgement)
        await asyncio.wait_for(first_four.wait(), T)
        # Killed mid-stream: the TCP connection is cut without a close frame.
        assert victim._ws is not None and victim._ws.transport is not None
        victim._ws.transport.abort()
        for _ in range(300):  # until the service has seen the module go
            if not (await central.module(victim.name))["connected"]:
                break
            await asyncio.sleep(0.01)
        assert not (await central.module(victim.name))["connected"]
        for n in range(5, 11):  # offline: queued by the service
            r = await sender.send(victim.name, "seq.n", {"n": n})
            assert r is not None and r.accepted == 1
        await victim.wait_connections(2, T)  # reconnected by itself after its backoff
        for n in range(11, 13):
            await sender.send(victim.name, "seq.n", {"n": n})
        await asyncio.wait_for(arrived.wait(), T)
        assert got == list(range(1, 13))
    finally:
        await sender.close()
        await victim.close()


async def test_a_second_connection_of_the_same_module_replaces_the_first(service: Service) -> None:
    reg = await register_module(f"twin{next(_names)}", service.url, service.token)
    first = await create_gns3_interface(reg.name, url=service.url, token=reg.token).initialize()
    second = await create_gns3_interface(reg.name, url=service.url, token=reg.token).initialize()
    try:
        reason = await asyncio.wait_for(first.wait_closed(), 5)
        assert reason and "replaced" in reason
        await second.ping()
    finally:
        await first.close()
        await second.close()
