"""picows listeners (Cython). See ext/oddswire/_wire.pyx; the C-level API is in _wire.pxd."""

import builtins
from collections.abc import Callable
from typing import Any, Never

import numpy as np
import numpy.typing as npt
from picows import WSFrame, WSListener, WSMsgType, WSTransport
from typing_extensions import disjoint_base

from oddswire._metrics import LatencyHistogram, StampLatency
from oddswire.errors import DecodeError
from oddswire_native import MarketData, QuoteBook

@disjoint_base
class Recorder:
    """Buffered writer of recording records (``oddswire.record``): a C buffer written to
    ``sink`` at ``flush_bytes`` or ``flush_interval`` seconds; a failed write goes to
    ``on_error`` once and recording stops."""

    @property
    def flush_bytes(self) -> int: ...
    @property
    def per_read(self) -> bool: ...
    @property
    def records(self) -> int: ...
    @property
    def written(self) -> int: ...
    @property
    def failed(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def buffered(self) -> int:
        """Bytes appended but not yet written to the sink."""
    def __init__(
        self,
        sink: Any,
        *,
        flush_bytes: int = 1 << 16,
        flush_interval: float = 1.0,
        per_read: bool = False,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> None: ...
    def write(
        self, kind: int, data: builtins.bytes | bytearray | memoryview = b"", flags: int = 0
    ) -> None:
        """Append one record stamped with the wall clock now."""
    def flush(self) -> None:
        """Write what is buffered to the sink, and flush the sink."""
    def tick(self) -> None:
        """Write what is buffered if ``flush_interval`` has passed since the last write."""
    def close(self) -> None:
        """Flush, then close the sink; further records are dropped."""

def replay_transport(underlying: Any, logger: Any, loop: Any) -> WSTransport:
    """A picows ``WSTransport`` over a stand-in transport whose writes go nowhere."""

def replay_disconnected(
    transport: WSTransport,
    recv: tuple[int, str] | list[Any] | None = None,
    sent: tuple[int, str] | list[Any] | None = None,
    recv_then_sent: bool = False,
    pong_timed_out: bool = False,
) -> None:
    """Mark ``transport`` disconnected as picows' ``connection_lost`` does."""

def replay_wait_done(transport: WSTransport) -> None:
    """Release ``wait_disconnected()``."""

@disjoint_base
class FeedListener(WSListener):
    """The frame layer every WebSocket feed shares: whole messages out of frames
    (fragments reassembled up to ``max_message_bytes``), CLOSE answered, PING answered only
    while the peer reads, text or protocol keep-alive, counters, latency recording (every message),
    error isolation.
    Cython subclasses override the C-level ``on_message``; the default calls
    ``on_message(payload: bytes)``."""

    transport: WSTransport | None
    @property
    def max_message_bytes(self) -> int: ...
    @property
    def max_write_buffer(self) -> int: ...
    @property
    def frames(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def messages(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def pings(self) -> int: ...
    @property
    def pongs(self) -> int: ...
    @property
    def pong_timed_out(self) -> bool: ...
    @property
    def abandoned(self) -> bool: ...
    @property
    def recorder(self) -> Recorder | None: ...
    @property
    def to_decoded(self) -> LatencyHistogram | None: ...
    @property
    def to_callback(self) -> LatencyHistogram | None: ...
    @property
    def server_stamp(self) -> StampLatency | None: ...
    def __init__(
        self,
        *args: Never,
        on_message: Callable[[builtins.bytes], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        on_connected: Callable[[WSTransport], Any] | None = None,
        on_disconnected: Callable[[WSTransport], Any] | None = None,
        max_message_bytes: int = 1 << 20,
        max_write_buffer: int = 1 << 20,
        ping_payload: builtins.bytes | None = None,
        pong_payload: builtins.bytes | None = None,
        record: Recorder | None = None,
        metrics: Any = None,
    ) -> None: ...
    def abandon(self) -> None:
        """Close the connection now, or as soon as the handshake completes."""
    def on_ws_connected(self, transport: WSTransport) -> None: ...
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None: ...
    def on_ws_disconnected(self, transport: WSTransport) -> None: ...
    def send_user_specific_ping(self, transport: WSTransport) -> None: ...
    def is_user_specific_pong(self, frame: WSFrame) -> bool: ...
    def feed(
        self,
        payload: builtins.bytes | bytearray | memoryview,
        *,
        msg_type: WSMsgType | int = ...,
        fin: bool = True,
        last_in_buffer: bool = True,
    ) -> None:
        """Process one frame's payload as if picows had delivered it (tests)."""
    def flush_metrics(self) -> None:
        """Add the staged latencies to the histograms (done at the end of every read)."""
    def mark_decoded(self) -> None:
        """The message being handled is decoded (``receive_to_decoded``)."""
    def stamp(self, stamp_ns: object, *, ms: bool = False) -> None:
        """The message being handled carries this server stamp (``server_to_receive``)."""
    def replay_frame(self, payload: builtins.bytes | bytearray | memoryview, flags: int) -> None:
        """Deliver one recorded data frame through ``on_ws_frame`` as picows does."""

@disjoint_base
class BrokerListener(FeedListener):
    """Decodes broker quote frames from picows' read buffer into a ``QuoteBook`` and calls
    ``on_quote(symbol, bid, ask, ts)`` (or ``on_quote(row)``) with scalars, and
    ``on_quotes(rows)`` once per read buffer with the rows updated in it."""

    book: QuoteBook
    on_fresh: Callable[[], Any] | None
    notify_fresh: bool
    @property
    def quote_rows(self) -> bool: ...
    @property
    def conflate(self) -> bool: ...
    @property
    def quotes(self) -> int: ...
    @property
    def delivered(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def batches(self) -> int: ...
    def __init__(
        self,
        book: QuoteBook,
        *,
        on_quote: Callable[..., Any] | None = None,
        on_quotes: Callable[[npt.NDArray[np.int64]], Any] | None = None,
        on_array: Callable[[builtins.bytes], Any] | None = None,
        on_object: Callable[[builtins.bytes], Any] | None = None,
        on_report: Callable[[str, BaseException], Any] | None = None,
        quote_rows: bool = False,
        conflate: bool = False,
        **kwargs: Any,
    ) -> None: ...
    def set_on_quote(self, on_quote: Callable[..., Any] | None) -> None: ...
    def set_on_quotes(self, on_quotes: Callable[[npt.NDArray[np.int64]], Any] | None) -> None:
        """Replace the batch callback (None: no batches; rows pending are dropped)."""
    def flush(self) -> None:
        """Deliver the conflated quotes and the batch still pending."""

@disjoint_base
class SatoriexListener(FeedListener):
    """Applies SatoriEx market-data messages from picows' read buffer to a ``MarketData``
    and calls the bound ``price`` / ``book`` callbacks with scalars; everything else goes
    to the client's Python path."""

    market_data: MarketData
    @property
    def prices(self) -> int: ...
    @property
    def books(self) -> int: ...
    @property
    def slow(self) -> int: ...
    def __init__(
        self,
        market_data: MarketData,
        *,
        on_other: Callable[[builtins.bytes], Any],
        on_applied: Callable[[int, builtins.bytes], Any],
        on_refused: Callable[[builtins.bytes, DecodeError], Any],
        on_report: Callable[[str, BaseException], Any],
        on_established: Callable[[], Any],
        resyncing: dict[str, float],
        **kwargs: Any,
    ) -> None: ...
    def bind(
        self,
        on_price: Callable[..., Any] | None,
        on_book: Callable[..., Any] | None,
        price_python: bool,
        book_python: bool,
    ) -> None:
        """The callbacks of the fast path (None: nobody listens), and whether price updates
        / book messages must take the Python path instead."""

