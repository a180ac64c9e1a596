"""Pure-Python twin of the compiled 55-tech payloads (``oddswire._tech55``): the ``orders``
and ``bets`` / ``settlements`` rows as msgspec Structs, decoded eagerly, field for field
what the lazy ``oddswire.tech55.Order`` / ``Bet`` read on attribute access. The oracle of
the property tests and the baseline of the benchmarks.

The lenient variants (unknown fields ignored) are also what the compiled types use for a
payload their one-pass scan refuses (unknown fields, unusual number or string forms, keys
with escapes): not a fallback for a missing build, the defined slow path, so that a
payload reads the same whichever path decoded it.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["Bet", "LenientBet", "LenientOrder", "Order"]


class Order(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """``orders`` payload: a row of the orders table."""

    order_id: int
    request_uuid: str | None = None
    client: str | None = None
    client_name: str | None = None
    fixture_id: str | None = None
    outcome_id: int | None = None
    player_id: int | None = None
    order_price: float | None = None
    order_stake: float | None = None
    filled_stake: float | None = None
    remaining_stake: float | None = None
    order_status: str | None = None
    status_reason: str | None = None
    user_ref: str | None = None
    test_order: bool | None = None
    accept_better_odds: bool | None = None
    accept_partial_stake: bool | None = None
    order_currency: str | None = None
    back: bool | None = None
    allowed_bookmakers: str | list[str] | None = None
    odds_info: Any = None
    meta: Any = None
    expires_at: str | None = None
    filled_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class Bet(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """``bets`` and ``settlements`` payload: a row of the bets table."""

    bet_id: int
    order_id: int | None = None
    bookmaker: str | None = None
    bookmaker_bet_id: str | None = None
    bet_status: str | None = None
    settlement_status: str | None = None
    placed_stake: float | None = None
    placed_price: float | None = None
    placed_currency: str | None = None
    account: str | None = None
    request_uuid: str | None = None
    user_ref: str | None = None
    test_bet: bool | None = None
    client: str | None = None
    client_name: str | None = None
    sent_data: Any = None
    received_data: Any = None
    settlement_amount: float | None = None
    settlement_reason: str | None = None
    settled_at: str | None = None
    decline_reason: str | None = None
    bet_request_id: Any = None
    odds_info: Any = None
    meta: Any = None
    placed_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class LenientOrder(Order, forbid_unknown_fields=False):
    """``Order`` ignoring unknown fields."""


class LenientBet(Bet, forbid_unknown_fields=False):
    """``Bet`` ignoring unknown fields."""
