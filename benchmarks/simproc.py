"""A simulator in its own process, so server and client each get a core, for the
end-to-end benchmarks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import uvloop

__all__ = ["drive", "simulator_process"]

C = TypeVar("C")


def simulator_process(argv: list[str], *, token_param: str | None = None) -> Iterator[str]:
    """Run ``python argv...`` and yield the URL it prints (``LISTENING ws://...``); with
    ``token_param`` it first prints ``TOKEN t``, and the URL carries ``?token_param=t``."""
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, text=True,
                            env={**os.environ})
    try:
        assert proc.stdout is not None
        token = proc.stdout.readline() if token_param else ""
        line = proc.stdout.readline()
        assert line.startswith("LISTENING ws://127.0.0.1:"), line
        url = line.split()[1]
        if token_param:
            assert token.startswith("TOKEN "), token
            url += f"?{token_param}={token.split()[1]}"
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def drive(client: Callable[[str, C], Awaitable[Any]], url: str, make_callback: Callable[[], C],
          timeout: float = 120) -> C:
    """One end-to-end run on uvloop: ``client(url, callback)`` until it returns (bounded by
    ``timeout``), with the callback object made inside the loop; returns the callback."""
    async def main() -> C:
        cb = make_callback()
        await asyncio.wait_for(client(url, cb), timeout)
        return cb
    return uvloop.run(main())
