"""A module's event handler across interruptions (docs/modules.md#resuming-events): a
restart of the service with Redis and a disconnect of the module itself lose no event and
repeat none (the module resubscribes with ``since``); a restart without Redis gives the
module the ``ResumeFailed`` signal with a fresh topology, then live events."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Callable, Union

from service import Redis, Service

from gns3central import Central, Event, ModuleInterface, ResumeFailed, create_gns3_interface, register_module

T = 20.0
_names = itertools.count(1)
Seen = list[Union[Event, ResumeFailed]]
JSONFrame = dict[str, Any]


class Watcher:
    """A module whose handlers record what they get, whose reconnection waits for
    :meth:`release` (the events the test publishes meanwhile must wait in the history),
    and whose subscribing again after it waits for ``resubscribe`` (set by default)."""

    def __init__(self, m: ModuleInterface) -> None:
        self.m = m
        self.seen: Seen = []
        self.changed = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()
        connect = m._connect

        async def gated() -> None:
            await self.gate.wait()
            await connect()

        m._connect = gated  # type: ignore[method-assign]
        self.resubscribe = asyncio.Event()
        self.resubscribe.set()
        again = m._resubscribe

        async def gated_again(frame: JSONFrame) -> None:
            await self.resubscribe.wait()
            await again(frame)

        m._resubscribe = gated_again  # type: ignore[method-assign]

        def record(item: Union[Event, ResumeFailed]) -> None:
            self.seen.append(item)
            self.changed.set()

        m.on_resume_failed(record)
        self.record = record

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def events(self) -> list[Event]:
        return [e for e in self.seen if isinstance(e, Event)]

    async def until(self, cond: Callable[[], bool]) -> None:
        async def loop() -> None:
            while not cond():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), T)


async def modules(svc: Service) -> tuple[Watcher, ModuleInterface]:
    """A watcher subscribed to the events of an emitter module, and the emitter."""
    i = next(_names)
    w_reg = await register_module(f"watcher{i}", svc.url, svc.token)
    e_reg = await register_module(f"emitter{i}", svc.url, svc.token)
    m = create_gns3_interface(w_reg.name, url=svc.url, token=w_reg.token, backoff_initial=0.05, backoff_max=0.2)
    await asyncio.wait_for(m.initialize(), T)
    w = Watcher(m)
    await asyncio.wait_for(m.subscribe_to_events([f"{e_reg.name}.*"], w.record), T)
    emitter = create_gns3_interface(e_reg.name, url=svc.url, token=e_reg.token, backoff_initial=0.05)
    await asyncio.wait_for(emitter.initialize(), T)
    return w, emitter


async def publish(emitter: ModuleInterface, numbers: range) -> None:
    for n in numbers:
        await asyncio.wait_for(emitter.publish("tick", {"n": n}), T)


def numbers(w: Watcher) -> list[int]:
    return [int(e.data["n"]) for e in w.events()]


async def same_as_history(svc: Service, w: Watcher, emitter: ModuleInterface) -> None:
    """The handler got exactly the stored history of the emitter's events: same ids."""
    async with Central(svc.url, svc.token) as c:
        history = await c.events_history(types=[f"{emitter.name}.*"], limit=1000)
    assert [e.id for e in w.events()] == [e.id for e in history]


async def closing(*ms: ModuleInterface) -> None:
    for m in ms:
        await m.close()


async def test_a_module_handler_across_a_service_restart_with_redis_misses_and_repeats_nothing(redis: Redis) -> None:
    svc = Service(redis=redis)
    try:
        w, emitter = await modules(svc)
        await publish(emitter, range(1, 6))
        await w.until(lambda: len(w.seen) == 5)
        w.hold()
        await asyncio.to_thread(svc.restart)  # same Redis: same epoch, history kept
        await emitter.wait_connections(2, T)
        await publish(emitter, range(6, 11))  # while the watcher is away
        w.release()
        await w.m.wait_connections(2, T)
        await publish(emitter, range(11, 16))
        await w.until(lambda: len(w.seen) >= 15)
        await publish(emitter, range(16, 17))  # a last one: nothing else was queued
        await w.until(lambda: len(w.seen) >= 16)
        assert not [s for s in w.seen if isinstance(s, ResumeFailed)]
        assert numbers(w) == list(range(1, 17))
        assert len({e.epoch for e in w.events()}) == 1
        await same_as_history(svc, w, emitter)
        assert w.m.last_event_id == w.events()[-1].id
        await closing(w.m, emitter)
    finally:
        svc.close()


async def test_events_published_while_a_module_is_disconnected_arrive_once_in_order(service: Service) -> None:
    w, emitter = await modules(service)
    try:
        await publish(emitter, range(1, 4))
        await w.until(lambda: len(w.seen) == 3)
        w.hold()
        ws = w.m._ws
        assert ws is not None and ws.transport is not None
        ws.transport.abort()  # killed mid-stream: no close frame
        async with Central(service.url, service.token) as c:
            for _ in range(500):  # until the service has seen the module go
                if not (await c.module(w.m.name))["connected"]:
                    break
                await asyncio.sleep(0.01)
            assert not (await c.module(w.m.name))["connected"]
            await publish(emitter, range(4, 9))
            w.resubscribe.clear()
            w.release()
            await w.m.wait_connections(2, T)
            # Before it subscribes again: these reach it at once (the service kept its
            # subscription) and come again in the replay; each must be handled once.
            delivered = (await c.module(w.m.name))["events_delivered"]
            await publish(emitter, range(9, 12))
            for _ in range(500):
                if (await c.module(w.m.name))["events_delivered"] >= delivered + 3:
                    break
                await asyncio.sleep(0.01)
            assert (await c.module(w.m.name))["events_delivered"] >= delivered + 3
            w.resubscribe.set()
        await w.until(lambda: len(w.seen) >= 11)
        await publish(emitter, range(12, 13))
        await w.until(lambda: len(w.seen) >= 12)
        assert numbers(w) == list(range(1, 13))
        await same_as_history(service, w, emitter)
    finally:
        await closing(w.m, emitter)


async def test_without_redis_a_service_restart_gives_the_module_resume_failed_with_a_topology() -> None:
    svc = Service()
    try:
        w, emitter = await modules(svc)
        await publish(emitter, range(1, 3))
        await w.until(lambda: len(w.seen) == 2)
        epoch = w.events()[0].epoch
        await asyncio.to_thread(svc.restart)  # history in memory: lost
        await w.until(lambda: any(isinstance(s, ResumeFailed) for s in w.seen))
        lost = next(s for s in w.seen if isinstance(s, ResumeFailed))
        assert (lost.recovered, lost.reason) == (False, "other_epoch")
        assert lost.topology is not None and len(lost.topology.projects()) == 2
        await publish(emitter, range(3, 4))  # live events follow the signal
        await w.until(lambda: isinstance(w.seen[-1], Event) and w.seen[-1].data["n"] == 3)
        after = w.seen[w.seen.index(lost) + 1 :]
        assert [isinstance(e, Event) and e.epoch != epoch for e in after] == [True] and numbers(w) == [1, 2, 3]
        await closing(w.m, emitter)
    finally:
        svc.close()


async def test_a_module_process_restarting_with_its_saved_last_event_id_gets_what_it_missed(
    service: Service,
) -> None:
    w, emitter = await modules(service)
    await publish(emitter, range(1, 3))
    await w.until(lambda: len(w.seen) == 2)
    saved = w.m.last_event_id
    assert saved == w.events()[-1].id
    await w.m.close()  # the process stops
    await publish(emitter, range(3, 6))
    again = create_gns3_interface(w.m.name, url=service.url, token=w.m._token, since=saved)
    try:
        await asyncio.wait_for(again.initialize(), T)
        w2 = Watcher(again)
        await asyncio.wait_for(again.subscribe_to_events([f"{emitter.name}.*"], w2.record), T)
        await w2.until(lambda: len(w2.seen) >= 3)
        await publish(emitter, range(6, 7))
        await w2.until(lambda: len(w2.seen) >= 4)
        assert numbers(w2) == [3, 4, 5, 6]
    finally:
        await closing(again, emitter)
