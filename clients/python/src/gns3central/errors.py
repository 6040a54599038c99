"""Exceptions: the service's error body (`{"error":{"code","message","details"}}`, the same
codes over WebSocket error frames) raised with its fields, plus the client's own failures
(service unreachable, connection lost)."""

from __future__ import annotations

from typing import Any, Optional


class Gns3CentralError(Exception):
    """Base of every exception the package raises.

    ``code`` is the service's stable error code (docs/api.md#error-codes), or one of the
    client's own: ``unreachable``, ``connection_lost``, ``protocol``.
    """

    def __init__(
        self,
        code: str,
        message: str,
        details: Any = None,
        status: Optional[int] = None,
    ) -> None:
        super().__init__(f"{code}: {message}" + (f" (HTTP {status})" if status else ""))
        self.code = code
        self.message = message
        self.details = details
        self.status = status


class ApiError(Gns3CentralError):
    """The service refused: a REST error body, a WebSocket ``error`` frame, a failed
    ``action_result`` or a refused upgrade."""


class AuthenticationError(ApiError):
    """401: no credential, or one the service does not accept (``missing_token``,
    ``invalid_token``, ``token_expired``)."""


class PermissionDenied(ApiError):
    """403: the credential is valid but may not do this (``insufficient_role``,
    ``wrong_module``, ``not_a_module_token``, ``forbidden_namespace``, ``forbidden``...)."""


class NotFound(ApiError):
    """404: unknown route, server, module, project or node."""


class ReplyTimeout(ApiError):
    """``reply_timeout``: no reply to a bus request within its timeout."""


class ServiceUnavailable(ApiError):
    """503: the service (or GNS3 behind it) cannot answer now; ``retry_after`` in seconds
    when the service said."""

    retry_after: Optional[float] = None


class ServiceUnreachable(Gns3CentralError):
    """The service does not answer at all (refused, reset, DNS, timeout)."""

    def __init__(self, url: str, cause: BaseException) -> None:
        super().__init__("unreachable", f"no gns3-central answers at {url}: {cause}")
        self.url = url


class ConnectionLost(Gns3CentralError):
    """The module's connection went away while a call waited for its answer; the call may
    or may not have been carried out."""

    def __init__(self, message: str, close_code: Optional[int] = None) -> None:
        super().__init__("connection_lost", message, {"close_code": close_code})
        self.close_code = close_code


_BY_CODE: dict[str, type[ApiError]] = {"reply_timeout": ReplyTimeout}
_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    503: ServiceUnavailable,
}
_WS_STATUS: dict[str, int] = {
    "missing_token": 401,
    "invalid_token": 401,
    "token_expired": 401,
    "wrong_module": 403,
    "not_a_module_token": 403,
    "forbidden_namespace": 403,
    "forbidden": 403,
    "insufficient_role": 403,
    "project_out_of_scope": 403,
    "unknown_module": 404,
    "unknown_server": 404,
    "not_found": 404,
    "inbox_full": 503,
    "too_many_pending": 503,
    "module_unavailable": 503,
    "publish_failed": 503,
    "events_unavailable": 503,
    "events_disabled": 503,
    "reply_timeout": 504,
}


def error_from(code: str, message: str, details: Any = None, status: Optional[int] = None) -> ApiError:
    """The most specific exception for a code and HTTP status (the status is guessed from
    the code for WebSocket error frames, which carry none)."""
    if status is None:
        status = _WS_STATUS.get(code)
    cls = _BY_CODE.get(code) or (_BY_STATUS.get(status) if status is not None else None) or ApiError
    return cls(code, message, details, status)


def error_from_body(body: Any, status: int) -> ApiError:
    """An exception from an error answer: the service's body when it is one, else a
    ``protocol`` error naming the status."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        e = body["error"]
        return error_from(str(e.get("code", "unknown")), str(e.get("message", "")), e.get("details"), status)
    return error_from("http_error", f"HTTP {status}: {str(body)[:200]}", None, status)
