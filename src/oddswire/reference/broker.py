"""Pure-Python twin of ``oddswire._wire.BrokerListener``'s frame handling (``feed``): the
oracle of its property tests and the baseline of the broker benchmarks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

from oddswire.errors import DecodeError, ProtocolError
from oddswire.reference.compact import QuoteBook

__all__ = ["BrokerListener"]

TEXT, BINARY, CONTINUATION = 1, 2, 0
_WS = b" \t\r\n"


class BrokerListener:
    def __init__(self, book: QuoteBook, *, on_quote: Callable[..., Any] | None = None,
                 on_array: Callable[[bytes], Any] | None = None,
                 on_object: Callable[[bytes], Any] | None = None,
                 on_error: Callable[[BaseException], Any] | None = None,
                 on_quotes: Callable[[Any], Any] | None = None,
                 quote_rows: bool = False, conflate: bool = False,
                 max_message_bytes: int = 1 << 20) -> None:
        self.book = book
        self.on_quotes = on_quotes
        self.on_quote, self.on_array, self.on_object = on_quote, on_array, on_object
        self.on_error = on_error
        self.quote_rows, self.conflate = quote_rows, conflate
        self.max_message_bytes = max_message_bytes
        self.frames = self.bytes = self.quotes = self.delivered = self.errors = self.pongs = 0
        self._frag: bytearray | None = None
        self._discarding = False
        self.rejected = 0
        self._pending: dict[int, tuple[Any, ...]] = {}  # row -> quote, insertion ordered
        self._batch: dict[int, None] = {}  # rows updated since the last batch, first first
        self.batches = 0

    def feed(self, payload: bytes, *, msg_type: int = TEXT, fin: bool = True,
             last_in_buffer: bool = True) -> None:
        self.frames += 1
        self.bytes += len(payload)
        if msg_type in (TEXT, BINARY):
            self._discarding = False
            if self._frag is not None:
                self._frag = None
                self._report(ProtocolError(
                    "a new message started before the fragmented one ended; dropped it"))
            if fin:
                if len(payload) > self.max_message_bytes:
                    self._too_big()
                else:
                    self._message(bytes(payload), last_in_buffer)
                return
            self._frag = bytearray()
        elif msg_type == CONTINUATION:
            if self._discarding:
                self._discarding = not fin
                return
            if self._frag is None:
                self._report(ProtocolError("continuation frame without a message"))
                return
        else:
            return
        assert self._frag is not None
        if len(self._frag) + len(payload) > self.max_message_bytes:
            self._frag = None
            self._discarding = not fin
            self._too_big()
            return
        self._frag += payload
        if fin and msg_type == CONTINUATION:
            message, self._frag = bytes(self._frag), None
            self._message(message, last_in_buffer)

    def _too_big(self) -> None:
        self._report(ProtocolError(
            f"a message over max_message_bytes ({self.max_message_bytes}): "
            "dropped, and the connection closed (1009)"))

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for quote in pending.values():
            self._deliver(quote)
        if self._batch:
            rows = np.fromiter(self._batch, dtype=np.int64, count=len(self._batch))
            self._batch = {}
            self.batches += 1
            if self.on_quotes is not None:
                try:
                    self.on_quotes(rows)
                except Exception as e:
                    self._report(e)

    def _message(self, data: bytes, last: bool) -> None:
        self._frame(data, last)
        if last:  # whatever the buffer's last frame was: nothing waits for the next read
            self.flush()

    def _frame(self, data: bytes, last: bool) -> None:
        head = data.lstrip(_WS)[:1]
        if head == b"[":
            try:
                row = self.book.apply(data)
            except DecodeError as e:
                self._report(e)
                return
            if row >= 0:
                self.quotes += 1
                if self.on_quotes is not None:
                    self._batch.setdefault(row)
                quote = (row, self.book.symbols[row], float(self.book.bid[row]),
                         float(self.book.ask[row]), int(self.book.ts[row]))
                if self.conflate:
                    self._pending[row] = quote
                else:
                    self._deliver(quote)
                return
            if row == -2:
                self.rejected += 1
                if self.rejected == 1:
                    self._report(ProtocolError(
                        "quotes for symbols this client did not subscribe are dropped "
                        "(counted in rejected)"))
                return
            self.flush()
            self._call(self.on_array, data)
            return
        self.flush()
        if head == b"{":
            self._call(self.on_object, data)
        elif data == b"pong":
            self.pongs += 1
        else:
            self._report(DecodeError("frame is neither a compact array nor a JSON object",
                                     field=0))

    def _deliver(self, quote: tuple[Any, ...]) -> None:
        self.delivered += 1
        if self.on_quote is None:
            return
        try:
            if self.quote_rows:
                self.on_quote(quote[0])
            else:
                self.on_quote(*quote[1:])
        except Exception as e:
            self._report(e)

    def _call(self, fn: Callable[[bytes], Any] | None, data: bytes) -> None:
        if fn is None:
            return
        try:
            fn(data)
        except Exception as e:
            self._report(e)

    def _report(self, exc: BaseException) -> None:
        self.errors += 1
        if self.on_error is not None:
            with contextlib.suppress(Exception):
                self.on_error(exc)
