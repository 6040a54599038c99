"""scripts/soak: a bounded chaos run of gns3-central (docs/testing.md#soak-scriptssoak).

Everything on 127.0.0.1: a Redis master and replica watched by three redis-sentinel
processes, two service instances (`a` is never killed, `b` is SIGKILLed and started
again) sharing them, the GNS3 v2 stand-in (`gns3-central simulate`) with steady
activity that both use, SOAK_CLIENTS dashboard clients split over both instances, two
modules exchanging messages and requests. The chaos, spread over the middle of the run
(once per five minutes of it): the stand-in SIGKILLed and started again; the Redis master
SIGKILLed (the sentinels promote the replica; the old master comes back as a replica);
instance `b` SIGKILLed and started again; a module reading too slowly for a while. Then
the checks (checks.py), a summary table, and exit status 1 when any check failed.

Environment: SOAK_MINUTES (10), SOAK_BIN (the binary), SOAK_MODULES (`same` or `split`),
SOAK_CLIENTS (200), SOAK_ACTIVITY (stand-in changes per second, 5), SOAK_WORK (the
directory for logs, target/soak)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Optional

import httpx

import checks
from admin import Admin
from bus import Module
from dashboards import Dashboard
from procs import MASTER_NAME, Instance, Proc, Redis, Sentinel, free_port, listening, proc_sample, wait_until

SENTINELS = 3  # quorum 2: a failover needs a majority, as a production deployment would
MODULE_RATE = 20.0  # messages per second each way (x20 while the peer reads slowly)


def token() -> tuple[str, str]:
    t = "g3c_" + secrets.token_hex(32)
    return t, "sha256:" + hashlib.sha256(t.encode()).hexdigest()


class Soak:
    def __init__(self) -> None:
        self.minutes = float(os.environ.get("SOAK_MINUTES", "10"))
        if self.minutes < 2:
            raise SystemExit("SOAK_MINUTES must be at least 2 (warm-up, one chaos cycle, the final samples)")
        self.total = self.minutes * 60.0
        self.binary = os.environ["SOAK_BIN"]
        self.placement = os.environ.get("SOAK_MODULES", "split")
        if self.placement not in ("same", "split"):
            raise SystemExit(f"SOAK_MODULES must be 'same' or 'split', not {self.placement!r}")
        self.n_clients = int(os.environ.get("SOAK_CLIENTS", "200"))
        self.activity = float(os.environ.get("SOAK_ACTIVITY", "5"))
        self.work = Path(os.environ.get("SOAK_WORK", "target/soak")).resolve()
        self.warmup = max(45.0, 0.15 * self.total)  # at least: the rehearsal may take longer
        self.window = max(10.0, 0.08 * self.total)  # resource samples: baseline and final windows
        self.cycles = max(1, round(self.minutes / 5))
        self.failures: list[str] = []
        self.timeline: list[tuple[float, str]] = []
        # (monotonic time, RSS kB, threads, fds, heap kB) per instance, every 2 s
        self.samples: dict[str, list[tuple[float, int, int, int, int]]] = {"a": [], "b": []}
        self.started_at: dict[str, float] = {}
        self.stopping = False
        self.quiet = False
        self.go_home = False
        self.gather: Optional[int] = None  # every dashboard to this instance (warm-up)
        self.t0 = time.monotonic()
        self.instances: list[Instance] = []
        self.ready: list[bool] = []
        self.modules: list[Module] = []
        self.slow: set[str] = set()
        self.kills = 0
        self.baseline_from = self.final_from = 0.0  # the resource windows, seconds from t0

    def log(self, msg: str) -> None:
        t = time.monotonic() - self.t0
        self.timeline.append((t, msg))
        print(f"soak [{t:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def want(self, d: Any) -> Optional[int]:
        """Where a dashboard must be now (None: where it likes)."""
        if self.gather is not None:
            return self.gather
        return d.home if self.go_home else None

    def peer_slow(self, name: str) -> bool:
        return name in self.slow

    # ---- setup (blocking; before the clients) ----

    def setup(self) -> None:
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        self.procs: list[Proc] = []
        self.master = Redis("redis-1", self.work, free_port())
        self.master.start()
        wait_until("redis-1 listening", lambda: listening(self.master.port), 15)
        self.replica = Redis("redis-2", self.work, free_port(), replica_of=self.master.port)
        self.replica.start()
        self.redis = [self.master, self.replica]
        wait_until("redis-2 in sync", lambda: self.replica.role() == "replica", 30)
        self.sentinels = [
            Sentinel(f"sentinel-{i + 1}", self.work, free_port(), self.master.port, quorum=2 if SENTINELS == 3 else 1)
            for i in range(SENTINELS)
        ]
        for s in self.sentinels:
            s.start()
        for s in self.sentinels:
            wait_until(f"{s.name} listening", lambda s=s: listening(s.port), 15)
        # A failover needs the sentinels to know each other (they meet on the master).
        wait_until("sentinels meet", lambda: all(s.known_sentinels() >= SENTINELS - 1 for s in self.sentinels), 30, 0.3)
        self.sim_port = free_port()
        self.sim = Proc(
            "stand-in",
            [
                self.binary,
                "simulate",
                "--port",
                str(self.sim_port),
                "--projects",
                "2",
                "--nodes",
                "6",
                "--activity",
                str(self.activity),
                "--seed",
                "14",
            ],
            self.work / "stand-in.log",
        )
        self.sim.start()
        wait_until("the stand-in listening", lambda: listening(self.sim_port), 30)
        self.admin_token, admin_hash = token()
        self.viewer_token, viewer_hash = token()
        sentinels = ", ".join(f'"127.0.0.1:{s.port}"' for s in self.sentinels)
        for name in ("a", "b"):
            port = free_port()
            cfg = f"""
[http]
bind = "127.0.0.1:{port}"
[gns3]
topology_burst_ms = 200
[gns3.servers.default]
host = "127.0.0.1"
port = {self.sim_port}
api_version = "v2"
timeout = 5.0
[gns3.servers.default.reconnect]
initial_backoff_ms = 100
max_backoff_ms = 1000
health_interval_secs = 1.0
[cache]
prefix = "soak"
[redis]
enabled = true
sentinels = [{sentinels}]
master_name = "{MASTER_NAME}"
[cluster]
instance_id = "{name}"
lease_ms = 5000
redis_timeout_ms = 500
[events]
history_size = 200
[audit]
dir = "@AUDIT_DIR@"
[[auth.tokens]]
name = "soak-admin"
role = "admin"
hash = "{admin_hash}"
[[auth.tokens]]
name = "soak-viewer"
role = "viewer"
hash = "{viewer_hash}"
"""
            self.instances.append(Instance(name, self.work, self.binary, port, cfg))
            self.ready.append(False)
        # `b` first, so that it most likely holds the ingestion lease when it is killed.
        for i in (1, 0):
            self.start_instance(i)

    def start_instance(self, i: int) -> None:
        inst = self.instances[i]
        inst.start()
        self.started_at[inst.name] = time.monotonic()

        def ready() -> bool:
            try:
                return httpx.get(inst.base + "/readyz", timeout=2, trust_env=False).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(f"instance {inst.name} ready", lambda: ready() or not inst.alive(), 90, 0.2)
        except TimeoutError:
            raise RuntimeError(f"instance {inst.name} not ready; its log:\n{inst.tail()}") from None
        if not inst.alive():
            raise RuntimeError(f"instance {inst.name} exited; its log:\n{inst.tail()}")
        self.ready[i] = True

    def register_modules(self) -> None:
        h = {"Authorization": f"Bearer {self.admin_token}"}
        tokens = {}
        for name in ("alpha", "beta"):
            r = httpx.post(self.instances[0].base + "/api/v2/modules", json={"name": name}, headers=h, trust_env=False)
            if r.status_code != 201:
                raise RuntimeError(f"registering {name}: {r.status_code} {r.text}")
            tokens[name] = r.json()["token"]
        alts: dict[str, Optional[int]]
        if self.placement == "same":
            homes, alts = {"alpha": 0, "beta": 0}, {"alpha": None, "beta": None}
        else:
            homes, alts = {"alpha": 0, "beta": 1}, {"alpha": 1, "beta": 0}
        self.modules = [
            Module("alpha", "beta", tokens["alpha"], self, homes["alpha"], alts["alpha"]),
            Module("beta", "alpha", tokens["beta"], self, homes["beta"], alts["beta"]),
        ]

    def bus_hosts(self) -> list[int]:
        """Instances that know the modules: `a` only with a per-instance bus."""
        return [0] if self.placement == "same" else [i for i in (0, 1) if self.ready[i]]

    # ---- background loops (each bounded by the deadline) ----

    async def every(self, period: float, deadline: float, what, *args: Any) -> None:
        while not self.stopping and not self.quiet and time.monotonic() < deadline:
            try:
                await what(*args)
            except (httpx.HTTPError, OSError, ValueError, KeyError) as e:
                self.log(f"{getattr(what, '__name__', what)}: {type(e).__name__}: {e}")
            await asyncio.sleep(period)

    async def sampler(self, deadline: float) -> None:
        while not self.stopping and not self.quiet and time.monotonic() < deadline:
            for i, inst in enumerate(self.instances):
                if self.ready[i] and inst.pid is not None and inst.alive():
                    s = proc_sample(inst.pid)
                    heap = await self.admin.heap(i)
                    if s:
                        self.samples[inst.name].append((time.monotonic(), *s, heap))
            await asyncio.sleep(2.0)

    def rest_round(self):
        n = [0]

        async def go() -> None:
            up = self.admin.up()
            if up:
                n[0] += 1
                await self.admin.rest_node_action(up[n[0] % len(up)])

        return go

    def config_round(self):
        n = [0]

        async def go() -> None:
            up = self.admin.up()
            if up:
                n[0] += 1
                await self.admin.patch_config(up[n[0] % len(up)])

        return go

    def http_bus_round(self):
        n = [0]

        async def go() -> None:
            hosts = self.bus_hosts()
            if hosts:
                n[0] += 1
                await self.admin.http_bus_send(hosts[n[0] % len(hosts)], ("alpha", "beta")[n[0] % 2])

        return go

    # ---- the chaos ----

    async def standin_outage(self, label: str = "chaos") -> None:
        self.log(f"{label}: the stand-in SIGKILLed")
        await asyncio.to_thread(self.sim.kill)
        await asyncio.sleep(3)
        await asyncio.to_thread(self.sim.start)
        await asyncio.to_thread(wait_until, "the stand-in back", lambda: listening(self.sim_port), 30)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            states = [await self.admin.get(i, "/api/v2/servers/default") for i in self.admin.up()]
            if all(isinstance(s, dict) and s.get("connected") for s in states):
                self.log("the stand-in is back; both instances connected to it")
                return
            await asyncio.sleep(0.3)
        self.failures.append("chaos: an instance did not reconnect to the stand-in within 30 s")

    async def redis_failover(self, label: str = "chaos") -> None:
        ports = {r.port: r for r in self.redis}
        now = self.sentinels[0].master_port()
        old = ports.get(now or -1)
        if old is None:
            self.failures.append(f"chaos: the sentinels name no known master ({now})")
            return
        new = next(r for r in self.redis if r is not old)
        self.log(f"{label}: the Redis master {old.name} (:{old.port}) SIGKILLed")
        t = time.monotonic()
        await asyncio.to_thread(old.kill)
        try:
            await asyncio.to_thread(
                wait_until, "promotion", lambda: all(s.master_port() == new.port for s in self.sentinels), 60, 0.2
            )
        except TimeoutError:
            self.failures.append(f"chaos: the sentinels did not promote {new.name} within 60 s")
            return
        self.log(f"the sentinels promoted {new.name} in {time.monotonic() - t:.1f} s; {old.name} back as its replica")
        await asyncio.to_thread(old.restart_as_replica_of, new.port)
        try:
            await asyncio.to_thread(wait_until, f"{old.name} in sync", lambda: old.role() == "replica", 60, 0.3)
        except TimeoutError:
            self.failures.append(f"chaos: {old.name} not a synced replica of {new.name} within 60 s")
        end = time.monotonic() + 30
        while time.monotonic() < end:
            st = [await self.admin.get(i, "/api/v2/cluster") for i in self.admin.up()]
            if all(isinstance(s, dict) and s.get("shared") for s in st):
                self.log("both instances on the shared log again")
                return
            await asyncio.sleep(0.3)
        self.failures.append("chaos: an instance not back on the shared log within 30 s of the failover")

    async def instance_kill(self) -> None:
        cluster = await self.admin.get(1, "/api/v2/cluster")
        ingesting = isinstance(cluster, dict) and cluster.get("ingesting", {}).get("default")
        self.log(f"chaos: instance b SIGKILLed (it {'holds' if ingesting else 'does not hold'} the ingestion lease)")
        self.ready[1] = False
        self.kills += 1
        await asyncio.to_thread(self.instances[1].kill)
        await asyncio.sleep(2)
        try:
            await asyncio.to_thread(self.start_instance, 1)
        except RuntimeError as e:
            self.failures.append(f"chaos: {e}")
            return
        self.log("instance b back and ready")
        for m in self.modules:
            if m.home == 1 and m.conn is not None and m.conn.inst != 1:
                await m.move_to(1)

    async def slow_module(self, seconds: float, label: str = "chaos") -> None:
        m = self.modules[1]
        self.log(f"{label}: module {m.name} reads slowly for {seconds:.0f} s (its peer sends 20x, 1.5 kB each)")
        self.slow.add(m.name)
        m.slow_until = time.monotonic() + seconds
        await asyncio.sleep(seconds)
        self.slow.discard(m.name)
        self.log(f"module {m.name} reads at full speed again ({m.led.slow_frames} frames read slowly)")

    def slow_seconds(self) -> float:
        """How long the module reads slowly (the same in warm-up and chaos): 12-30 s."""
        slot = (0.75 - 0.15 - 0.08) * self.total / (4 * self.cycles)
        return min(30.0, max(12.0, 0.8 * slot))

    async def rehearse(self) -> None:
        """Warm-up: the load the chaos brings, once — every dashboard on `a`, then every
        one on `b`, then home; the slow module; a Sentinel failover; the stand-in's
        restart — so that the baseline samples come after each instance's high-water mark
        (allocator caches, buffers grown once), not before it: what grows after it again
        is what the check is for."""
        for where in (0, 1, None):
            self.gather = where
            self.go_home = where is None
            end = time.monotonic() + 20
            # A bounded poll of what the clients report (they move on their own).
            while time.monotonic() < end and any(d.at != self.want(d) for d in self.dashboards):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            await asyncio.sleep(2)
        self.go_home = False
        self.log("warm-up: every dashboard went to a, then to b, then home")
        await self.slow_module(self.slow_seconds(), "warm-up")
        await self.redis_failover("warm-up")
        await self.standin_outage("warm-up")

    async def chaos(self, start: float, end: float) -> None:
        steps = [self.standin_outage, self.redis_failover, self.instance_kill, None]
        slots = len(steps) * self.cycles
        slot = (end - start) / slots
        k = 0
        for _ in range(self.cycles):
            for step in steps:
                at = start + k * slot
                k += 1
                if time.monotonic() < at:
                    await asyncio.sleep(at - time.monotonic())
                if self.stopping:
                    return
                if step is None:
                    await self.slow_module(self.slow_seconds())
                else:
                    await step()

    # ---- the run ----

    async def run(self) -> int:
        """The schedule follows what actually happened: the baseline window starts once the
        warm-up is done, the chaos takes its slots up to 75 % of the run (later if its steps
        took longer), the clients go home at 78 % (or after the chaos), and the final window
        ends at the planned end, or `window` after the clients are home if that is later."""
        self.admin = Admin(self, self.admin_token)
        t0 = self.t0 = time.monotonic()
        hard = t0 + self.total + 600  # every loop ends by then whatever happens
        tasks: list[asyncio.Task[Any]] = []
        spawn = asyncio.get_running_loop().create_task
        await self.admin.refresh_targets()
        self.dashboards = [
            Dashboard(i, self, i % 2, self.admin_token if i == 0 else self.viewer_token, actor=(i == 0))
            for i in range(self.n_clients)
        ]
        for d in self.dashboards:
            tasks.append(spawn(d.run(hard)))
        for m in self.modules:
            await m.first_connect()
            tasks.append(spawn(m.keep_connected(hard)))
        for m in self.modules:
            tasks.append(spawn(m.chatter(hard, MODULE_RATE)))
        tasks.append(spawn(self.sampler(hard)))
        tasks.append(spawn(self.every(10, hard, self.admin.refresh_targets)))
        tasks.append(spawn(self.every(3, hard, self.rest_round())))
        tasks.append(spawn(self.every(15, hard, self.config_round())))
        tasks.append(spawn(self.every(5, hard, self.admin.ws_node_action, self.dashboards[0])))
        tasks.append(spawn(self.every(7, hard, self.admin.module_node_action, self.modules[0])))
        tasks.append(spawn(self.every(1, hard, self.http_bus_round())))
        dead_poll = spawn(self.every(1, hard, lambda: self.admin.poll_dead_letters(self.bus_hosts())))
        self.log(
            f"running {self.minutes:g} min: {self.n_clients} dashboards, modules {self.placement}, "
            f"warm-up at least {self.warmup:.0f} s, {self.cycles} chaos cycle(s)"
        )
        await self.rehearse()
        await asyncio.sleep(max(0.0, t0 + self.warmup - time.monotonic()))
        self.baseline_from = time.monotonic() - t0
        self.log("warm-up done: baseline samples")
        await asyncio.sleep(self.window)
        await self.chaos(time.monotonic(), t0 + 0.75 * self.total)
        # Back home: dashboards and modules where they started, for the final samples.
        await asyncio.sleep(max(0.0, t0 + 0.78 * self.total - time.monotonic()))
        self.go_home = True
        for m in self.modules:
            if m.conn is not None and m.conn.inst != m.home:
                await m.move_to(m.home)
        self.log("every client goes back to its home instance")
        self.final_from = max(self.total - self.window, time.monotonic() - t0 + 10)
        await asyncio.sleep(max(0.0, t0 + self.final_from + self.window - time.monotonic()))
        self.quiet = True
        self.log("quiet: senders and admin actions stop; draining")
        result = await checks.finish(self, hard)
        self.stopping = True
        for m in self.modules:
            await m.close()
        dead_poll.cancel()
        await asyncio.wait(tasks, timeout=15)
        for t in tasks:
            t.cancel()
        await self.admin.close()
        return result

    def teardown(self) -> None:
        for inst in self.instances:
            inst.stop()
        for p in [getattr(self, "sim", None), *getattr(self, "sentinels", []), *getattr(self, "redis", [])]:
            if p is not None:
                p.kill()


def main() -> int:
    # SIGTERM (the wrapper's time limit, Ctrl-C's cousin) unwinds like Ctrl-C, so that
    # every process the soak started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    soak = Soak()
    try:
        soak.setup()
        soak.register_modules()
        return asyncio.run(soak.run())
    except (RuntimeError, TimeoutError) as e:
        print(f"soak: setup failed: {e}", file=sys.stderr)
        return 2
    finally:
        soak.teardown()
        print(f"soak: logs in {soak.work}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
