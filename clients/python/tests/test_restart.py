"""A module across a restart of the service: it reconnects by itself (its registration is
kept in `modules.state_file`), its event subscription is sent again, and the bus works."""

from __future__ import annotations

import asyncio

from service import Service

from gns3central import BusMessage, Central, Event, create_gns3_interface, register_module

T = 20.0


async def test_a_module_reconnects_after_a_service_restart_with_its_subscriptions() -> None:
    svc = Service()
    try:
        reg = await register_module("survivor", svc.url, svc.token)
        peer_reg = await register_module("peer", svc.url, svc.token)
        m = await create_gns3_interface(reg.name, url=svc.url, token=reg.token, backoff_initial=0.05).initialize()
        events: asyncio.Queue[Event] = asyncio.Queue()
        await asyncio.wait_for(m.subscribe_to_events(["node_status"], events.put_nowait), T)
        m.on_message(lambda msg: {"alive": True} if msg.type == "survivor.ping" else None)

        await asyncio.to_thread(svc.restart)
        await m.wait_connections(2, T)

        async with Central(svc.url, svc.token) as c:
            # the stand-in is new too: read its ids from GNS3
            project = (await c.projects())[0]["project_id"]
            node = next(n for n in await c.nodes(project) if n["status"] == "started")
            result = await c.stop_node(project, node["node_id"])
        while True:  # events again, without subscribing again by hand
            ev = await asyncio.wait_for(events.get(), T)
            if ev.correlation_id == result.correlation_id:
                assert ev.type == "node.stopped"
                break
        peer = await create_gns3_interface(peer_reg.name, url=svc.url, token=peer_reg.token).initialize()
        reply: BusMessage = await peer.request(reg.name, "survivor.ping", {})
        assert reply.payload == {"alive": True}
        await peer.close()
        await m.close()
    finally:
        svc.close()
