"""DATA.BET sportsbook replication feed (``shared/specs/databet-feed.md``).

``OddsTable`` (Rust) holds the replicated state: one row per live odd in numpy columns
(``table.odds["value"]``, ``probability`` (NaN when absent), ``status``, ``is_active``, and
the ``event`` / ``market`` slot of each row; free rows hold NaN / -1). ``apply(line)`` takes a
log line as bytes off the wire and returns an ``Applied`` describing it; strings and the
payload on ``Applied`` are decoded only when read, so the hot path builds no dicts.

Rules (the spec's): a snapshot or ``sport_event_added`` replaces the whole sport event; a
market in ``markets_updated`` replaces that market with all its odds; ``bets_rollback``
changes no odds and is returned for the client to deliver; a log for a sport event the
table does not hold changes nothing and is reported with ``Applied.known_event == False``
(refetch that event). An odd is bettable when its fixture status is 0 or 1, its market
status is 0, its own status is 0 and ``is_active``, the event has no bet stop, and
``table.healthy`` is True.

``apply`` is atomic per line: a malformed line raises ``DecodeError`` (with ``field``,
``sport_event_id`` and ``version`` when known) and leaves the table unchanged.
``apply_many`` keeps the lines before a bad one applied; the error carries ``.index`` and
``.applied`` (their results).

Bounded memory: events whose fixture ends (status 3-6) are evicted ``retention_s`` after the
log that ended them (``OddsTable(retention_s=...)``, or ``evict_ended(before_ns)`` by hand);
freed rows are reused. The columns grow by doubling; a growth reallocates them, so take
``table.odds`` views after applying (or use ``table.row(...)``).
"""

from oddswire_native import Applied, OddsTable, SportEvent

__all__ = ["Applied", "OddsTable", "SportEvent"]
