"""Pure-Python twins of every compiled codec: the oracle of the property tests and the
baseline of the benchmarks. They are never used as a silent fallback at run time."""

from oddswire.reference.betcore import GamesTable
from oddswire.reference.broker import BrokerListener
from oddswire.reference.compact import CompactDecoder, QuoteBook
from oddswire.reference.databet import OddsTable
from oddswire.reference.framing import ChunkedLineSplitter, RecordSplitter
from oddswire.reference.satoriex import MarketData

__all__ = [
    "BrokerListener",
    "ChunkedLineSplitter",
    "CompactDecoder",
    "GamesTable",
    "MarketData",
    "OddsTable",
    "QuoteBook",
    "RecordSplitter",
]
