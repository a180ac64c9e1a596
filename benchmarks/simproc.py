"""A simulator in its own process, so server and client each get a core, for the
end-to-end benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

__all__ = ["simulator_process"]


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
