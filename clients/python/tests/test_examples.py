from __future__ import annotations

from example_check import check
from service import Service


async def test_the_monitoring_example_alerts_and_answers(service: Service) -> None:
    await check(service)
