"""Shared plumbing: where the service is (arguments or environment), opening a WebSocket
with a token and turning a refused upgrade or an unreachable service into the package's
exceptions."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, Optional

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from .errors import Gns3CentralError, ServiceUnreachable, error_from_body

DEFAULT_URL = "http://127.0.0.1:8000"
# Frames up to 16 MiB: a whole topology arrives in one frame.
MAX_FRAME = 16 * 1024 * 1024


def resolve(url: Optional[str], token: Optional[str], token_env: tuple[str, ...]) -> tuple[str, str]:
    """``url``/``token`` as given, else from the environment (``GNS3_CENTRAL_URL``, then
    the token variables in order); a missing token is an error that says where to put one."""
    u = url or os.environ.get("GNS3_CENTRAL_URL") or DEFAULT_URL
    t = token
    for name in token_env:
        if t:
            break
        t = os.environ.get(name)
    if not t:
        raise Gns3CentralError("missing_token", f"no token given: pass token=... or set {' or '.join(token_env)}")
    return u.rstrip("/"), t


def ws_url(base: str, path: str) -> str:
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + path
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + path
    return base + path


async def open_ws(base: str, path: str, token: str, open_timeout: float) -> ClientConnection:
    """Open ``path`` with ``Authorization: Bearer``; a refused upgrade raises the service's
    error (401, 403...), a service that does not answer :class:`ServiceUnreachable`."""
    url = ws_url(base, path)
    try:
        return await connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=open_timeout,
            max_size=MAX_FRAME,
            # The service pings every heartbeat_interval_ms; the library answers them.
            ping_interval=None,
            compression=None,
        )
    except InvalidStatus as e:
        body: Any
        try:
            body = json.loads(e.response.body or b"")
        except ValueError:
            body = (e.response.body or b"").decode(errors="replace")
        raise error_from_body(body, e.response.status_code) from None
    except (OSError, InvalidHandshake, asyncio.TimeoutError, TimeoutError) as e:
        raise ServiceUnreachable(base, e) from e
