"""Python client for gns3-central: the module interface (``create_gns3_interface``) and
the API consumer's client (``Central``). See docs/python-client.md."""

from .central import Central
from .errors import (
    ApiError,
    AuthenticationError,
    ConnectionLost,
    Gns3CentralError,
    NotFound,
    PermissionDenied,
    ReplyTimeout,
    ServiceUnavailable,
    ServiceUnreachable,
)
from .models import (
    ActionResult,
    BusMessage,
    Event,
    Missed,
    ModuleRegistration,
    NodeStatus,
    ResumeFailed,
    SendResult,
    StreamItem,
    Topology,
)
from .module import ModuleInterface, create_gns3_interface
from .registration import register_module

__version__ = "0.1.0"

__all__ = [
    "ActionResult",
    "ApiError",
    "AuthenticationError",
    "BusMessage",
    "Central",
    "ConnectionLost",
    "Event",
    "Gns3CentralError",
    "Missed",
    "ModuleInterface",
    "ModuleRegistration",
    "NodeStatus",
    "NotFound",
    "PermissionDenied",
    "ReplyTimeout",
    "ResumeFailed",
    "SendResult",
    "ServiceUnavailable",
    "ServiceUnreachable",
    "StreamItem",
    "Topology",
    "__version__",
    "create_gns3_interface",
    "register_module",
]
