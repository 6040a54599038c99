"""Bad credentials and a service that is down give clear exceptions."""

from __future__ import annotations

import asyncio

import pytest
from service import Service, free_port

from gns3central import (
    AuthenticationError,
    Central,
    Gns3CentralError,
    NotFound,
    PermissionDenied,
    ServiceUnreachable,
    create_gns3_interface,
    register_module,
)


async def test_a_bad_token_is_refused_with_the_service_error(service: Service) -> None:
    async with Central(service.url, "g3c_" + "0" * 64) as c:
        with pytest.raises(AuthenticationError) as e:
            await c.status()
        assert e.value.status == 401 and e.value.code == "invalid_token" and e.value.message
        with pytest.raises(AuthenticationError):
            async for _ in c.events():
                pass
    m = create_gns3_interface("nosuch", url=service.url, token="g3m_" + "0" * 64)
    with pytest.raises(AuthenticationError):
        await m.initialize()


async def test_another_modules_token_is_wrong_module(service: Service) -> None:
    one = await register_module("errone", service.url, service.token)
    two = await register_module("errtwo", service.url, service.token)
    m = create_gns3_interface(two.name, url=service.url, token=one.token)
    with pytest.raises(PermissionDenied) as e:
        await m.initialize()
    assert e.value.code == "wrong_module" and e.value.status == 403
    m = create_gns3_interface(one.name, url=service.url, token=service.token)
    with pytest.raises(PermissionDenied) as e:
        await m.initialize()
    assert e.value.code == "not_a_module_token"


async def test_rest_errors_carry_code_message_and_details(central: Central) -> None:
    with pytest.raises(NotFound) as e:
        await central.module("nosuchmodule")
    assert e.value.code == "unknown_module" and e.value.status == 404
    with pytest.raises(Gns3CentralError) as bad:
        await central.create_module("Bad Name!")
    assert bad.value.code == "invalid_module_name" and bad.value.status == 400


async def test_a_service_that_is_down_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with Central(url, "g3c_x") as c:
        with pytest.raises(ServiceUnreachable) as e:
            await c.status()
        assert e.value.code == "unreachable" and url in e.value.message
        with pytest.raises(ServiceUnreachable):
            await asyncio.wait_for(c.events().__anext__(), 10)
    with pytest.raises(ServiceUnreachable):
        await create_gns3_interface("m", url=url, token="g3m_x").initialize()


def test_a_missing_token_says_where_to_put_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GNS3_CENTRAL_TOKEN", raising=False)
    monkeypatch.delenv("GNS3_CENTRAL_MODULE_TOKEN", raising=False)
    with pytest.raises(Gns3CentralError) as e:
        create_gns3_interface("m")
    assert "GNS3_CENTRAL_MODULE_TOKEN" in e.value.message


async def test_credentials_come_from_the_environment(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNS3_CENTRAL_URL", service.url)
    monkeypatch.setenv("GNS3_CENTRAL_TOKEN", service.token)
    async with Central() as c:
        assert (await c.status())["servers"]
