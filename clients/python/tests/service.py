"""Starting the real service binary (``serve --test-mode``, its built-in GNS3 stand-in)
and a real redis-server on free loopback ports, for the tests, the bench and the example
check. The binary: ``GNS3_CENTRAL_BIN``, else ``$CARGO_TARGET_DIR/debug/gns3-central``,
else ``target/debug/gns3-central`` of the repository."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import httpx

REPO = Path(__file__).resolve().parents[3]


def binary() -> str:
    if os.environ.get("GNS3_CENTRAL_BIN"):
        return os.environ["GNS3_CENTRAL_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
    path = Path(target) / "debug" / "gns3-central"
    if not path.exists():
        raise RuntimeError(f"{path} not found: run `cargo build` or set GNS3_CENTRAL_BIN")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Redis:
    def __init__(self) -> None:
        exe = os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server") or "/usr/bin/redis-server"
        self.dir = tempfile.mkdtemp(prefix="gns3central-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--logfile",
                os.path.join(self.dir, "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Service:
    """One ``serve --test-mode`` process; :meth:`restart` keeps port, token and data."""

    def __init__(self, redis: Optional[Redis] = None, port: Optional[int] = None, modules_config: str = "") -> None:
        self.dir = tempfile.mkdtemp(prefix="gns3central-svc-")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = "g3c_" + secrets.token_hex(32)
        digest = hashlib.sha256(self.token.encode()).hexdigest()
        self.config = os.path.join(self.dir, "config.toml")
        with open(self.config, "w") as f:
            f.write(
                "[modules]\n"
                f'state_file = "{self.dir}/modules.json"\n{modules_config}\n'
                "[[auth.tokens]]\n"
                'name = "tests"\nrole = "admin"\n'
                f'hash = "sha256:{digest}"\n'
            )
        self.redis = redis
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.log = os.path.join(self.dir, "service.log")
        self.start()

    def start(self) -> None:
        env = dict(os.environ)
        env.pop("GNS3_CENTRAL_TOKEN", None)
        if self.redis is not None:
            env["REDIS_HOST"] = "127.0.0.1"
            env["REDIS_PORT"] = str(self.redis.port)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [binary(), "serve", "--test-mode", "--config", self.config, "--bind", f"127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited ({self.proc.returncode}): {self.tail()}")
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=1)
                if r.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the service did not become ready: {self.tail()}")

    def tail(self) -> str:
        with open(self.log, "rb") as f:
            return f.read()[-3000:].decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
