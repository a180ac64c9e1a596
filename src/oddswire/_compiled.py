"""Check the compiled modules at import time, or fail with a message that says how to build.

oddswire never falls back to its pure-Python twins at run time: a missing extension is a
broken install, and a silently 20x slower client is worse than an ImportError.
"""

from __future__ import annotations

import importlib

from oddswire._build_info import COMPILED_MODULES
from oddswire.errors import BuildError

__all__ = ["require"]

_HOW = (
    "oddswire's compiled extensions are missing or stale. From a checkout run\n"
    "    pip install ./rust .\n"
    "(while developing: pip install -e ./rust && pip install -e . --no-build-isolation)."
)


def require() -> None:
    for name in COMPILED_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise BuildError(f"cannot import {name}: {exc}\n{_HOW}") from exc


require()
