"""picows listeners (Cython). See ext/oddswire/_wire.pyx; the C-level API is in _wire.pxd."""

import builtins
from collections.abc import Callable
from typing import Any

from picows import WSFrame, WSListener, WSTransport

from oddswire_native import QuoteBook

class BrokerListener(WSListener):
    """Decodes broker quote frames from picows' read buffer into a ``QuoteBook`` and calls
    ``on_quote(symbol, bid, ask, ts)`` (or ``on_quote(row)``) with scalars."""

    book: QuoteBook
    transport: WSTransport | None
    on_fresh: Callable[[], Any] | None
    notify_fresh: bool
    @property
    def quote_rows(self) -> bool: ...
    @property
    def conflate(self) -> bool: ...
    @property
    def max_message_bytes(self) -> int: ...
    @property
    def frames(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def quotes(self) -> int: ...
    @property
    def delivered(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def pings(self) -> int: ...
    @property
    def pongs(self) -> int: ...
    @property
    def pong_timed_out(self) -> bool: ...
    def __init__(
        self,
        book: QuoteBook,
        *,
        on_quote: Callable[..., Any] | None = None,
        on_array: Callable[[builtins.bytes], Any] | None = None,
        on_object: Callable[[builtins.bytes], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        on_connected: Callable[[WSTransport], Any] | None = None,
        on_disconnected: Callable[[WSTransport], Any] | None = None,
        on_sample: Callable[[int, int], Any] | None = None,
        quote_rows: bool = False,
        conflate: bool = False,
        max_message_bytes: int = 1 << 20,
        sample_every: int = 64,
    ) -> None: ...
    def on_ws_connected(self, transport: WSTransport) -> None: ...
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None: ...
    def on_ws_disconnected(self, transport: WSTransport) -> None: ...
    def send_user_specific_ping(self, transport: WSTransport) -> None: ...
    def is_user_specific_pong(self, frame: WSFrame) -> bool: ...
    def feed(
        self,
        payload: builtins.bytes | bytearray | memoryview,
        *,
        msg_type: int = 1,
        fin: bool = True,
        last_in_buffer: bool = True,
    ) -> None:
        """Process one frame's payload as if picows had delivered it (tests, replay)."""
    def set_on_quote(self, on_quote: Callable[..., Any] | None) -> None: ...
    def flush(self) -> None:
        """Deliver the conflated quotes still pending."""
