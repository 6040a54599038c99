"""Tail gns3-central's events, like ``tail -f``, surviving restarts of the service.

export GNS3_CENTRAL_URL=http://127.0.0.1:8000 GNS3_CENTRAL_TOKEN=g3c_...
python examples/tail_events.py [node_status topology_changes ...] [--since EVENT_ID] [--count N]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Optional

from gns3central import Central, Event, Missed, ResumeFailed


async def main(subscriptions: list[str], since: Optional[str], count: Optional[int]) -> None:
    seen = 0
    async with Central() as central:
        async for item in central.events(subscriptions or ["all"], since=since):
            if isinstance(item, Event):
                print(
                    f"{item.id:>16} {item.timestamp} {item.priority:<8} {item.type:<20} "
                    f"{item.project_id or '-'} {item.node_id or '-'}",
                    flush=True,
                )
                seen += 1
                if count is not None and seen >= count:
                    return
            elif isinstance(item, ResumeFailed):
                n = len(item.topology.projects()) if item.topology else 0
                print(f"-- could not resume ({item.reason}): starting again from a topology of {n} project(s)")
            elif isinstance(item, Missed):
                print(f"-- {item.count} event(s) shed (slow reader): {item.dropped}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("subscriptions", nargs="*")
    p.add_argument("--since")
    p.add_argument("--count", type=int)
    a = p.parse_args()
    asyncio.run(main(a.subscriptions, a.since, a.count))
