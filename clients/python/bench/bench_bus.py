"""Bus benchmark through the package (docs/benchmarks.md#python-client):

1. request/reply between two modules: ``--requests`` sequential requests, latency
   percentiles (target p99 <= 5 ms);
2. one module receiving live: ``--senders`` sender processes (each a module of its own)
   put ``--messages`` bus messages on the bus between them (``send(wait=False)``, each at
   most 3,000 unreceived: the receiver acks every 1,000 of a sender's with a bus message)
   and the receiving module's handler counts them; rate = messages / time from the first
   to the last one received (target >= 20,000/s). Several senders, so that the senders
   (a Python process writes about as fast as one reads) are not what is measured;
3. the receive side alone: ``--messages`` wait in the offline queue of a module that is
   not connected, which then connects and drains them (the started service allows that
   many: ``modules.offline_queue``, ``inbox_capacity``, ``session_mailbox`` and
   ``websocket.queue_frames``, since the queue is
   handed to the session at once).

    python bench/bench_bus.py [--url URL --token ADMIN_TOKEN [--url2 URL2]] [--requests 2000]
                              [--messages 50000] [--senders 2] [--profile DIR]
                              [--redis | --two-instances]

Across instances (docs/modules.md#several-instances): with ``--url2`` (or
``--two-instances``, which starts a redis-server and two ``serve --test-mode`` processes
on it), the module answering requests, the receiving module and the draining module
connect to the second instance, the requester and the senders to the first: every
message crosses from one instance to the other through Redis. ``--redis`` starts one
instance on a redis-server (the shared bus, every module on that instance), to compare
with the in-instance bus without Redis (the default).

``--profile DIR`` writes a pyinstrument profile (text) of the receiving module's process
and of the first sender to DIR (pyinstrument from PyPI must be installed).

Without ``--url`` it starts ``serve --test-mode`` (the debug binary unless
GNS3_CENTRAL_BIN names another, e.g. target/release/gns3-central). Bounded: counts and a
60 s limit per phase; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from gns3central import BusMessage, Central, create_gns3_interface  # noqa: E402

LIMIT = 60.0


WINDOW = 1000  # the receiver acks every WINDOW messages; at most 3 windows unreceived


async def sender(url: str, name: str, token: str, to: str, count: int, flow: bool = True) -> None:
    profile = os.environ.get("BENCH_PROFILE_SENDER")
    if profile:
        from pyinstrument import Profiler

        with Profiler(async_mode="disabled") as prof:
            await _sender(url, name, token, to, count, flow)
        _write(profile, prof.output_text(unicode=False, show_all=True))
        return
    await _sender(url, name, token, to, count, flow)


async def _sender(url: str, name: str, token: str, to: str, count: int, flow: bool) -> None:
    m = await create_gns3_interface(name, url=url, token=token).initialize()
    acked = 0
    progress = asyncio.Event()

    def on_ack(msg: BusMessage) -> None:
        nonlocal acked
        acked = int(msg.payload["received"])
        progress.set()

    m.on_message(on_ack, types=["bench.ack"])
    payload = {"n": 0, "text": "x" * 64}
    for i in range(count):
        while flow and i - acked >= 3 * WINDOW:  # flow control: the service's buffers stay small
            progress.clear()
            await asyncio.wait_for(progress.wait(), LIMIT)
        payload["n"] = i
        await m.send(to, "bench.msg", payload, wait=False)
    await m.ping()  # every frame before it was handled
    await m.close()


async def run(
    url: str, admin: str, requests: int, messages: int, senders: int, profile: Optional[str], url2: Optional[str] = None
) -> None:
    there = url2 or url  # where the answering, receiving and draining modules connect
    suffix = str(os.getpid())
    async with Central(url, admin) as c:
        regs = {r: await c.create_module(f"bench{r}{suffix}") for r in ("a", "b", "c")}
        sender_regs = [await c.create_module(f"benchs{i}x{suffix}") for i in range(senders)]
    a = await create_gns3_interface(regs["a"].name, url=url, token=regs["a"].token).initialize()
    b = await create_gns3_interface(regs["b"].name, url=there, token=regs["b"].token).initialize()
    b.on_message(lambda msg: {"ok": True} if msg.is_request else None)

    for _ in range(200):  # warm-up
        await a.request(b.name, "bench.ping", {})
    lat: list[float] = []
    deadline = time.monotonic() + LIMIT
    for _ in range(requests):
        t0 = time.perf_counter()
        await a.request(b.name, "bench.ping", {"t": t0})
        lat.append((time.perf_counter() - t0) * 1000)
        if time.monotonic() > deadline:
            break
    lat.sort()
    q = statistics.quantiles(lat, n=100)
    print(
        f"request/reply: {len(lat)} requests, p50 {q[49]:.2f} ms, p90 {q[89]:.2f} ms, "
        f"p99 {q[98]:.2f} ms, max {lat[-1]:.2f} ms"
    )

    received = 0
    per_sender: dict[str, int] = {}
    first: Optional[float] = None
    last = 0.0
    done = asyncio.Event()
    total = messages // senders * senders

    def count(msg: BusMessage) -> None:
        nonlocal received, first, last
        now = time.perf_counter()
        first = first if first is not None else now
        last = now
        received += 1
        n = per_sender[msg.sender] = per_sender.get(msg.sender, 0) + 1
        if n % WINDOW == 0:
            b._spawn(b.send(msg.sender, "bench.ack", {"received": n}, wait=False))
        if received >= total:
            done.set()

    b.on_message(count, types=["bench.msg"])
    procs = []
    for i, reg in enumerate(sender_regs):
        env = dict(os.environ)
        if profile and i == 0:
            env["BENCH_PROFILE_SENDER"] = str(Path(profile) / "sender.txt")
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--sender", url, reg.name, reg.token, b.name, str(total // senders), env=env
            )
        )
    prof = _profiler(profile)
    try:
        await asyncio.wait_for(done.wait(), LIMIT)
    except asyncio.TimeoutError:
        pass
    if prof is not None and profile:
        prof.stop()
        _write(str(Path(profile) / "receiver.txt"), prof.output_text(unicode=False, show_all=True))
    for proc in procs:
        await asyncio.wait_for(proc.wait(), LIMIT)
    elapsed = (last - first) if first is not None else 0.0
    rate = received / elapsed if elapsed > 0 else 0.0
    print(
        f"receive ({senders} sender processes): {received}/{total} messages in {elapsed:.3f} s = {rate:,.0f} messages/s"
    )
    await a.close()
    await b.close()

    # 3. The receive side alone: the messages wait in the offline queue of a module that is
    # not connected (the service must allow that many: --offline-queue), then it connects
    # and drains them.
    async with Central(url, admin) as c:
        reg = await c.create_module(f"benchd{suffix}")
    sender_proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sender", url, regs["c"].name, regs["c"].token, reg.name, str(messages), "nowait"
    )
    await asyncio.wait_for(sender_proc.wait(), LIMIT)
    queued = messages  # all wait in its offline queue (the service allows that many)
    drained = 0
    t_first: Optional[float] = None
    t_last = 0.0
    all_in = asyncio.Event()

    def drain(msg: BusMessage) -> None:
        nonlocal drained, t_first, t_last
        t_last = time.perf_counter()
        t_first = t_first if t_first is not None else t_last
        drained += 1
        if drained >= queued:
            all_in.set()

    d = create_gns3_interface(reg.name, url=there, token=reg.token)
    d.on_message(drain)
    await d.initialize()
    try:
        await asyncio.wait_for(all_in.wait(), LIMIT)
    except asyncio.TimeoutError:
        pass
    span = (t_last - t_first) if t_first is not None else 0.0
    print(
        f"drain: {drained}/{queued} queued messages in {span:.3f} s = "
        f"{drained / span if span > 0 else 0:,.0f} messages/s"
    )
    await d.close()


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _profiler(profile: Optional[str]) -> Any:
    if not profile:
        return None
    from pyinstrument import Profiler

    Path(profile).mkdir(parents=True, exist_ok=True)
    prof = Profiler(async_mode="disabled")
    prof.start()
    return prof


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sender":
        url, name, token, to, count = sys.argv[2:7]
        asyncio.run(sender(url, name, token, to, int(count), flow=len(sys.argv) < 8))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url")
    p.add_argument("--token")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--messages", type=int, default=50000)
    p.add_argument("--senders", type=int, default=2)
    p.add_argument("--profile", metavar="DIR")
    p.add_argument("--url2", help="a second instance on the same Redis (the receiving side connects there)")
    p.add_argument("--redis", action="store_true", help="start one instance on a redis-server (the shared bus)")
    p.add_argument("--two-instances", action="store_true", help="start a redis-server and two instances on it")
    args = p.parse_args()
    senders = max(1, args.senders)
    if args.url:
        asyncio.run(run(args.url, args.token, args.requests, args.messages, senders, args.profile, args.url2))
        return
    from service import Redis, Service

    n = max(1024, args.messages)
    # the whole offline queue is handed to the session at once: its buffer must hold it
    config = (
        f"offline_queue = {n}\ninbox_capacity = {n}\nsession_mailbox = {n}\n\n"
        f"[websocket]\nqueue_frames = {n}\nqueue_bytes = {n * 400}"
    )
    redis = Redis() if (args.redis or args.two_instances) else None
    services = [Service(redis=redis, modules_config=config)]
    try:
        if args.two_instances:
            services.append(Service(redis=redis, modules_config=config))
        url2 = services[1].url if len(services) > 1 else None
        asyncio.run(run(services[0].url, services[0].token, args.requests, args.messages, senders, args.profile, url2))
    finally:
        for svc in services:
            svc.close()
        if redis is not None:
            redis.stop()


if __name__ == "__main__":
    main()
