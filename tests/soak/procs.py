"""The real processes of the soak, all on 127.0.0.1 free ports: a Redis master and a
replica, three redis-sentinel processes, the GNS3 v2 stand-in (`gns3-central simulate`)
and the service instances (`gns3-central serve`). Each can be SIGKILLed and started
again on the same port; `/proc/<pid>` is read for the resource samples."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

MASTER_NAME = "soak"
RESERVED = {6379, 26379, 8000, 3080}


def free_port() -> int:
    """A free 127.0.0.1 port (never Redis', Sentinel's, the service's or GNS3's default)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in RESERVED:
            return port
    raise RuntimeError("no free port")


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(what: str, pred, timeout: float, every: float = 0.1):
    """Polls `pred` (bounded: `timeout` seconds) until it returns a true value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


class Proc:
    """One child process with a fixed command line and log file; kill -9 and start again."""

    def __init__(self, name: str, argv: list[str], log: Path, env: Optional[dict[str, str]] = None):
        self.name = name
        self.argv = argv
        self.log = log
        self.env = env
        self.p: Optional[subprocess.Popen[bytes]] = None
        self.starts = 0

    def start(self) -> None:
        out = open(self.log, "ab")  # the child writes to it; closed here once handed over
        out.write(f"\n==== start {self.starts + 1}: {' '.join(self.argv)}\n".encode())
        out.flush()
        self.p = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=self.env
        )
        out.close()
        self.starts += 1

    @property
    def pid(self) -> Optional[int]:
        return self.p.pid if self.p else None

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def kill(self) -> None:
        """SIGKILL: no graceful anything."""
        if self.p is not None and self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.p is not None and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Redis(Proc):
    """A redis-server without persistence (the replica holds the data); `replica_of`
    makes it a replica from the start."""

    def __init__(self, name: str, work: Path, port: int, replica_of: Optional[int] = None):
        d = work / name
        d.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.dir = d
        super().__init__(name, self._argv(replica_of), work / f"{name}.log")

    def _argv(self, replica_of: Optional[int]) -> list[str]:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        if replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(replica_of)]
        return argv

    def restart_as_replica_of(self, master_port: int) -> None:
        self.kill()
        self.argv = self._argv(master_port)
        self.start()
        wait_until(f"{self.name} listening", lambda: listening(self.port), 15)

    def command(self, *args: str) -> str:
        out = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout

    def role(self) -> str:
        try:
            info = self.command("INFO", "replication")
        except (subprocess.SubprocessError, OSError):
            return ""
        fields = dict(line.strip().split(":", 1) for line in info.splitlines() if ":" in line)
        if fields.get("role") == "slave":
            return "replica" if fields.get("master_link_status") == "up" else "replica-syncing"
        return fields.get("role", "")


class Sentinel(Proc):
    """redis-sentinel watching the master (quorum 2 of the 3; down after 1 s)."""

    def __init__(self, name: str, work: Path, port: int, master_port: int, quorum: int):
        d = work / name
        d.mkdir(parents=True, exist_ok=True)
        self.port = port
        conf = d / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {d}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} {quorum}\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
            f"sentinel failover-timeout {MASTER_NAME} 5000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        super().__init__(name, ["redis-sentinel", str(conf)], work / f"{name}.log")

    def _cli(self, *args: str) -> str:
        try:
            return subprocess.run(
                ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "SENTINEL", *args],
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
        except (subprocess.SubprocessError, OSError):
            return ""

    def master_port(self) -> Optional[int]:
        out = self._cli("get-master-addr-by-name", MASTER_NAME).split()
        try:
            return int(out[1]) if len(out) >= 2 else None
        except ValueError:
            return None

    def known_sentinels(self) -> int:
        """Other sentinels this one has discovered (through the master's hello channel)."""
        return self._cli("sentinels", MASTER_NAME).count("runid")


class Instance(Proc):
    """One `gns3-central serve` process with its own config, audit dir and port."""

    def __init__(self, name: str, work: Path, binary: str, port: int, config: str):
        d = work / f"instance-{name}"
        d.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        cfg = d / "config.toml"
        cfg.write_text(config.replace("@AUDIT_DIR@", str(d / "audit")))
        # The environment must not point the instance at anything but its config file.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GNS3_", "REDIS_"))}
        env["RUST_LOG"] = env.get("SOAK_RUST_LOG", "info")
        super().__init__(name, [binary, "serve", "--config", str(cfg)], work / f"instance-{name}.log", env)


def proc_sample(pid: int) -> Optional[tuple[int, int, int]]:
    """(RSS kB, threads, open file descriptors) of a live process, from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = int(fields["VmRSS"].split()[0])
        threads = int(fields["Threads"].strip())
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, threads, fds
    except (OSError, KeyError, ValueError):
        return None
