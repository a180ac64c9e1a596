"""Broker platform stream (``shared/specs/broker-ws.md``): compact-array quotes.

Wire assumption (the spec leaves it open): a quote frame is
``["t", symbol, bid, ask, ts]``; prices are JSON numbers (ints accepted), ``ts`` an integer
timestamp in [0, 2**63-1]. Any other layout is configured with a schema, e.g.
``QuoteBook([("symbol", "str"), ("bid", "f64"), ("ask", "f64"), ("ts", "ts"),
("volume", "f64")])``. Values after the schema are validated and ignored by ``QuoteBook``
and returned as plain JSON by ``CompactDecoder``.

``QuoteBook`` keeps the last quote per symbol in numpy columns (``bid``, ``ask``, ``ts``
and any extra schema field) that grow by doubling: a growth reallocates the columns, so
take views after it, or look rows up with ``.row(symbol)`` and read ``.column(name)`` anew.
"""

from oddswire_native import CompactDecoder, QuoteBook

__all__ = ["CompactDecoder", "QuoteBook"]
