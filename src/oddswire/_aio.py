"""asyncio helpers the clients and simulators share."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], poll: float = 0.05) -> None:
    """Cancel ``tasks`` and wait until every one has ended, cancelling again while one goes
    on: on Python 3.11 a ``wait_for`` whose inner future completes in the same loop turn as
    the cancel drops the cancel (fixed in 3.12), and a loop around it never ends."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=poll)
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()  # retrieved: an error after a cancel is not worth a report
