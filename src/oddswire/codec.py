"""The compiled codecs, under stable names.

``ChunkedLineSplitter`` and ``RecordSplitter`` are Cython (``oddswire._framing``; the
C-level ``LineSink`` API is published in ``oddswire/_framing.pxd`` for ``cimport``).
``CompactDecoder`` is Rust (``oddswire_native``). Their pure-Python twins with the same
API live in :mod:`oddswire.reference`.
"""

from oddswire._framing import ChunkedLineSplitter, CountingLineSink, LineSink, RecordSplitter
from oddswire_native import CompactDecoder

__all__ = [
    "ChunkedLineSplitter",
    "CompactDecoder",
    "CountingLineSink",
    "LineSink",
    "RecordSplitter",
]
