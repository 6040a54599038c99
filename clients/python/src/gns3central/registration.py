"""Registration helper (admin): create a module and get its token in one call."""

from __future__ import annotations

from typing import Optional

from .central import Central
from .models import ModuleRegistration


async def register_module(
    name: str, url: Optional[str] = None, admin_token: Optional[str] = None
) -> ModuleRegistration:
    """Register module ``name`` with an admin token (default ``GNS3_CENTRAL_TOKEN``) and
    return the registration with its token (shown once: keep it, e.g. in
    ``GNS3_CENTRAL_MODULE_TOKEN``)."""
    async with Central(url, admin_token) as c:
        return await c.create_module(name)
