"""The bus side of the module interface: send, broadcast, request/reply and publish, each
one frame on the module's socket (docs/modules.md#module-protocol). A mixin of
:class:`~gns3central.module.ModuleInterface`, which provides the socket."""

from __future__ import annotations

from typing import Any, Optional

from .models import JSON, BusMessage, SendResult


class BusCalls:
    """``_call`` sends a frame and returns its answer (raising an ``error`` answer);
    ``_send_frame`` only writes it."""

    name: str
    request_timeout: float

    async def _call(self, frame: JSON, timeout: Optional[float] = None) -> JSON:
        raise NotImplementedError

    async def _send_frame(self, frame: JSON) -> None:
        raise NotImplementedError

    async def send(
        self,
        to: str,
        type: str,
        payload: Any = None,
        *,
        ttl_ms: Optional[int] = None,
        correlation_id: Optional[str] = None,
        wait: bool = True,
    ) -> Optional[SendResult]:
        """Send a bus message to module ``to``. With ``wait`` (the default) it returns
        what the bus did (``accepted``/``refused``) and raises its refusal
        (``unknown_module``, ``module_offline``, ``inbox_full``...); without, it returns
        ``None`` once the frame is written (refusals are only logged)."""
        message: JSON = {"to": to, "type": type, "payload": payload}
        if ttl_ms is not None:
            message["ttl"] = ttl_ms
        if correlation_id is not None:
            message["correlation_id"] = correlation_id
        if not wait:
            await self._send_frame({"type": "send", "message": message})
            return None
        return SendResult.from_json(await self._call({"type": "send", "message": message}))

    async def broadcast(self, type: str, payload: Any = None, *, ttl_ms: Optional[int] = None) -> SendResult:
        """Send to every other module; ``refused`` lists those that did not take it."""
        message: JSON = {"type": type, "payload": payload}
        if ttl_ms is not None:
            message["ttl"] = ttl_ms
        return SendResult.from_json(await self._call({"type": "broadcast", "message": message}))

    async def request(self, to: str, type: str, payload: Any = None, timeout: float = 5.0) -> BusMessage:
        """Send a request and return the reply (its ``payload`` is the answer); raises
        :class:`ReplyTimeout` after ``timeout`` seconds."""
        ms = max(1, int(timeout * 1000))
        frame = {"type": "request", "timeout_ms": ms, "message": {"to": to, "type": type, "payload": payload}}
        answer = await self._call(frame, timeout=timeout + self.request_timeout)
        return BusMessage.from_json(answer["message"])

    async def reply(self, request: BusMessage, payload: Any) -> None:
        """Answer a request explicitly (instead of returning from the handler)."""
        if request.reply_to is None:
            raise ValueError("not a request: it has no reply_to")
        message = {"to": request.reply_to, "correlation_id": request.id, "payload": payload}
        await self._call({"type": "reply", "message": message})

    async def publish(
        self,
        type: str,
        data: Any = None,
        *,
        project_id: Optional[str] = None,
        node_id: Optional[str] = None,
        server: Optional[str] = None,
        correlation_id: Optional[str] = None,
    ) -> None:
        """Publish an event in the module's namespace: ``alert`` becomes
        ``<name>.alert``; ``<name>.alert`` is kept as is."""
        full = type if type.startswith(self.name + ".") else f"{self.name}.{type}"
        event: JSON = {"type": full, "data": data}
        for k, v in (
            ("project_id", project_id),
            ("node_id", node_id),
            ("server", server),
            ("correlation_id", correlation_id),
        ):
            if v is not None:
                event[k] = v
        await self._call({"type": "publish", "event": event})
