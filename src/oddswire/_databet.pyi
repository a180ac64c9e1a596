from typing import Any

from typing_extensions import disjoint_base

from oddswire._framing import LineSink

SLOT_NAMES: tuple[str, ...]

@disjoint_base
class LogSink(LineSink):
    """Applies DATA.BET /log lines for a DatabetClient: the compiled per-line loop."""

    def __init__(self, client: Any) -> None: ...
    def flush_metrics(self) -> None: ...
    def begin(self, t_recv: int) -> None: ...
    def end(self) -> int: ...
    def lines(self, lines: list[bytes], t_recv: int) -> None: ...
