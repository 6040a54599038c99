from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from service import Redis, Service

from gns3central import Central


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    svc = Service()
    yield svc
    svc.close()


@pytest.fixture
async def central(service: Service) -> AsyncIterator[Central]:
    async with Central(service.url, service.token) as c:
        yield c


@pytest.fixture
def redis() -> Iterator[Redis]:
    r = Redis()
    yield r
    r.stop()
