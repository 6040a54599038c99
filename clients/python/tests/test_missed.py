"""``on_missed`` (docs/python-client.md): a module whose handler blocks its event loop
stops reading its socket; the service fills the socket, then its own bounded buffer
(``websocket.queue_frames``, small here), then sheds NORMAL events for that module only
and tells it with a ``missed`` frame. Once the handler returns, the module gets the events
that were kept and the ``Missed`` signal; what it got plus what it was told it missed is
every event published."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from service import Service

from gns3central import Event, Missed, create_gns3_interface, register_module

T = 30.0
EVENTS = 2000  # of 16 KB: more than the loopback socket buffers hold (~10 MB)


@pytest.fixture(scope="module")
def small_buffers() -> Iterator[Service]:
    svc = Service(modules_config="\n[websocket]\nqueue_frames = 32\n")
    yield svc
    svc.close()


def publish_in_a_thread(url: str, name: str, token: str, done: threading.Event) -> threading.Thread:
    """Another module, in its own thread and event loop (the watcher's loop is blocked)."""

    async def publisher() -> None:
        m = await create_gns3_interface(name, url=url, token=token).initialize()
        try:
            for n in range(EVENTS):
                await m.publish("tick", {"n": n, "pad": "x" * 16384})
        finally:
            await m.close()
            done.set()

    t = threading.Thread(target=lambda: asyncio.run(publisher()), daemon=True)
    t.start()
    return t


async def test_a_module_that_reads_too_slowly_is_told_what_it_missed(small_buffers: Service) -> None:
    svc = small_buffers
    pub = await register_module("ticker", svc.url, svc.token)
    watcher_reg = await register_module("sleepy", svc.url, svc.token)
    watcher = await create_gns3_interface(watcher_reg.name, url=svc.url, token=watcher_reg.token).initialize()
    published = threading.Event()
    got: list[int] = []
    missed: list[Missed] = []
    settled = asyncio.Event()

    def check() -> None:
        if len(got) + sum(m.count for m in missed) >= EVENTS:
            settled.set()

    def on_tick(ev: Event) -> None:
        if not got:
            # The first event blocks the module's whole event loop (a handler doing slow
            # synchronous work) until every event has been published.
            assert published.wait(T), "the publisher did not finish"
        got.append(int(ev.data["n"]))
        check()

    def on_missed(signal: Missed) -> None:
        missed.append(signal)
        check()

    watcher.on_missed(on_missed)
    await asyncio.wait_for(watcher.subscribe_to_events(["ticker.*"], on_tick), T)
    thread = publish_in_a_thread(svc.url, pub.name, pub.token, published)
    try:
        await asyncio.wait_for(settled.wait(), T)
    finally:
        thread.join(T)
        await watcher.close()
    assert missed, "no Missed signal although events were shed"
    lost = sum(m.count for m in missed)
    assert all(m.dropped.get("NORMAL", 0) + m.dropped.get("LOW", 0) == m.count for m in missed), missed
    assert len(got) + lost == EVENTS, (len(got), lost)
    assert got == sorted(got) and len(set(got)) == len(got), "kept ones in order, each once"
    assert 0 < lost < EVENTS
