"""Compiled framing codecs (Cython). See ext/oddswire/_framing.pyx and _framing.pxd."""

from typing_extensions import Buffer, disjoint_base

@disjoint_base
class LineSink:
    """Base class of C-level line consumers: subclass in Cython and override ``on_line``.

    Lines reach ``on_line`` as (pointer, length), valid only during the call.
    """

@disjoint_base
class CountingLineSink(LineSink):
    """Counts lines and bytes without creating any Python object per line."""

    @property
    def lines(self) -> int: ...
    @property
    def bytes(self) -> int: ...

@disjoint_base
class ChunkedLineSplitter:
    """Decode an HTTP/1.1 chunked body (RFC 9112 section 7.1) into NDJSON lines."""

    def __init__(self, max_line_bytes: int = 67108864) -> None: ...
    @property
    def done(self) -> bool: ...
    @property
    def failed(self) -> bool: ...
    @property
    def pending(self) -> int: ...
    @property
    def capacity(self) -> int:
        """Bytes allocated for the line buffer (0 once failed: the buffer is released)."""
    @property
    def max_line_bytes(self) -> int: ...
    def feed(self, data: Buffer) -> list[bytes]: ...
    def feed_into(self, data: Buffer, sink: LineSink) -> int: ...
    def eof(self) -> list[bytes]: ...

@disjoint_base
class RecordSplitter:
    """Split a byte stream on the SignalR record separator 0x1E."""

    def __init__(self, max_record_bytes: int = 67108864) -> None: ...
    @property
    def pending(self) -> int: ...
    @property
    def capacity(self) -> int:
        """Bytes allocated for the record buffer (0 once failed: the buffer is released)."""
    @property
    def failed(self) -> bool: ...
    @property
    def max_record_bytes(self) -> int: ...
    def feed(self, data: Buffer) -> list[bytes]: ...
    def eof(self) -> None: ...
