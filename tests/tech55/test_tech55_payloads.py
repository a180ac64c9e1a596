"""The lazily decoded payloads (``oddswire._tech55.Order`` / ``Bet``) against their twin,
the eager msgspec Structs of ``oddswire.reference.tech55``: hypothesis writes payloads
token by token (random field subsets and key order, escapes, unicode, big ints, floats in
every literal form, nested values, duplicate keys, unknown fields, wrong kinds, bad
JSON) and every attribute must equal the twin's, floats bit for bit; where the twin
refuses a payload, ``decode`` raises the same error type. Then whole frames, cut at every
byte and with bytes corrupted, through the compiled and the Python frame paths."""

from __future__ import annotations

import copy
import json
import math
import pickle
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oddswire._tech55 import BET_FIELDS, ORDER_FIELDS
from oddswire.reference import tech55 as twin
from oddswire.tech55 import Bet, Order, Payload, Tech55Client

# The schema kinds of _tech55.pyx (F_*) and the annotations of the twin they stand for.
KIND_OF = {int: 1, int | None: 2, float | None: 3, str | None: 4, bool | None: 5, Any: 6,
           str | list[str] | None: 7}
LAZY = {"orders": (Order, twin.LenientOrder, ORDER_FIELDS),
        "bets": (Bet, twin.LenientBet, BET_FIELDS)}


@pytest.mark.parametrize("channel", list(LAZY))
def test_schema_is_the_twins(channel: str) -> None:
    lazy, eager, fields = LAZY[channel]
    assert lazy.__struct_fields__ == eager.__struct_fields__
    assert lazy.__struct_encode_fields__ == eager.__struct_encode_fields__
    hints = {f.name: f.type for f in msgspec.structs.fields(eager)}
    assert [f[2] for f in fields] == [KIND_OF[hints[name]] for name in eager.__struct_fields__]
    assert [f[1] for f in fields] == list(eager.__struct_encode_fields__)


# --- JSON text, token by token -------------------------------------------------------------

def js_string(s: str, escape: str) -> str:
    if escape == "none":
        return json.dumps(s, ensure_ascii=False)
    if escape == "ascii":
        return json.dumps(s)  # \\uXXXX for everything past ASCII, surrogate pairs included
    return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c for c in s) + '"'


texts = st.text(max_size=8) | st.sampled_from(["", "é", "a\"b", "c\\d", "\n\t", "/", "💷"])
strings = st.builds(js_string, texts, st.sampled_from(["none", "none", "ascii", "all"]))
int_literals = st.one_of(
    st.integers(-(2**40), 2**40).map(str), st.integers(-(10**40), 10**40).map(str),
    st.sampled_from(["0", "-0", "9223372036854775807", "9223372036854775808",
                     "-9223372036854775809", "18446744073709551616", "1" * 25]))
float_literals = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.builds(lambda m, f, e, s: f"{m}.{f}e{s}{e}", st.integers(0, 999),
              st.integers(0, 10**20), st.integers(0, 400), st.sampled_from(["", "+", "-"])),
    st.builds(lambda m, e: f"{m}E{e}", st.integers(-99, 99), st.integers(-30, 30)),
    st.sampled_from(["-0.0", "0.0", "1e400", "5e-324", "2.2250738585072014e-308",
                     "0.1000000000000000055511151231257827", "123456789012345678.5",
                     "1.7976931348623157e308", "1.", ".5", "01.5", "1e", "-", "1.5e+"]))
scalars = st.one_of(st.just("null"), st.just("true"), st.just("false"), strings, int_literals,
                    float_literals)


def js_array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def js_object(pairs: list[tuple[str, str]], spaced: bool = False) -> str:
    sep, colon = (", ", " : ") if spaced else (",", ":")
    return "{" + sep.join(f"{k}{colon}{v}" for k, v in pairs) + "}"


nested = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3).map(js_array)
                      | st.lists(st.tuples(strings, inner), max_size=3).map(js_object),
                      max_leaves=8)


def value_for(kind: int) -> st.SearchStrategy[str]:
    """Mostly a value of the field's kind, sometimes anything (a kind off the schema)."""
    fitting = {1: int_literals, 2: int_literals | st.just("null"),
               3: int_literals | float_literals | st.just("null"),
               4: strings | st.just("null"), 5: st.sampled_from(["true", "false", "null"]),
               6: nested, 7: strings | st.lists(strings, max_size=3).map(js_array)
               | st.just("null")}[kind]
    return st.one_of(*[fitting] * 8, nested)


@st.composite
def payload_text(draw: st.DrawFn, fields: tuple[tuple[str, str, int], ...]) -> bytes:
    chosen = draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields)))
    if draw(st.integers(0, 9)):  # usually the required id
        chosen = [fields[0], *[f for f in chosen if f is not fields[0]]]
    pairs = [(json.dumps(wire), draw(value_for(kind))) for _a, wire, kind in chosen]
    pairs = draw(st.permutations(pairs))
    extra = draw(st.sampled_from(["none"] * 6 + ["unknown", "dup", "escaped_key", "cut"]))
    if extra == "unknown":
        pairs.insert(draw(st.integers(0, len(pairs))), ('"newColumn"', draw(nested)))
    elif extra == "dup" and pairs:
        pairs.append((pairs[0][0], draw(value_for(fields[0][2]))))
    elif extra == "escaped_key" and pairs:
        key = json.loads(pairs[0][0])
        pairs[0] = ('"\\u00' + f"{ord(key[0]):02x}" + key[1:] + '"', pairs[0][1])
    text = js_object(pairs, spaced=draw(st.booleans()))
    if draw(st.booleans()):
        text = " " + text + "\n"
    data = text.encode()
    if extra == "cut" and data:
        data = data[:draw(st.integers(0, len(data) - 1))]
    return data


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a.hex() == b.hex() or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def check(channel: str, data: bytes) -> None:
    lazy_type, eager_type, _fields = LAZY[channel]
    try:
        want = msgspec.json.decode(data, type=eager_type)
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        with pytest.raises(type(e)):
            lazy_type.decode(data)
        return
    got = lazy_type.decode(data)
    assert isinstance(got, lazy_type) and isinstance(got, Payload) and got.raw == data
    for name in eager_type.__struct_fields__:
        assert same(getattr(got, name), getattr(want, name)), name
        assert getattr(got, name) is getattr(got, name)  # cached
    known = set(eager_type.__struct_encode_fields__)
    try:
        values = msgspec.json.decode(data)
    except msgspec.ValidationError:  # a number out of range in an unknown field
        with pytest.raises(msgspec.ValidationError):
            got.extra  # noqa: B018
    else:
        assert got.extra == {k: v for k, v in values.items() if k not in known}
    assert got.to_dict() == msgspec.to_builtins(want)
    assert pickle.loads(pickle.dumps(got)) == got == copy.deepcopy(got)


@settings(max_examples=400)
@given(st.data())
def test_order_equals_twin(data: st.DataObject) -> None:
    check("orders", data.draw(payload_text(ORDER_FIELDS)))


@settings(max_examples=400)
@given(st.data())
def test_bet_equals_twin(data: st.DataObject) -> None:
    check("bets", data.draw(payload_text(BET_FIELDS)))


def test_payload_api() -> None:
    order = Order.decode(b'{"orderId":7,"orderPrice":1.5,"meta":{"a":[1]},"back":false}')
    assert repr(order) == "Order(order_id=7, order_price=1.5, back=False, meta={'a': [1]})"
    assert order == Order.decode(b'{"back":false,"meta":{"a":[1]},"orderPrice":1.50,'
                                 b'"orderId":7}')
    assert order != Order.decode(b'{"orderId":8}') and order != Bet.decode(b'{"betId":7}')
    with pytest.raises(TypeError):
        hash(order)
    with pytest.raises(AttributeError):
        order.order_id = 8  # type: ignore[misc]
    with pytest.raises(TypeError):
        Order()
    with pytest.raises(msgspec.ValidationError):
        Order.decode(b'{"orderPrice":1.5}')  # orderId is required
    # The payload owns its bytes: a reused buffer does not change it.
    buf = bytearray(b'{"orderId":7,"client":"abc"}')
    kept = Order.decode(buf)
    buf[:] = b'{"orderId":9,"client":"xyz"}'
    assert kept.order_id == 7 and kept.client == "abc"


# --- whole frames, cut and corrupted ---------------------------------------------------------

ORDER = {"orderId": 327, "requestUuid": "5b4f", "client": "demo", "clientName": "démo",
         "fixtureId": "id1000", "outcomeId": 103, "playerId": 0, "orderPrice": 2.35,
         "orderStake": 10.0, "filledStake": 0, "remainingStake": 1e1, "orderStatus": "PENDING",
         "statusReason": None, "userRef": "b\"1", "testOrder": False, "acceptBetterOdds": True,
         "allowedBookmakers": ["bk1", "bk2"], "oddsInfo": None, "meta": {"k": [1, 2.5]},
         "expiresAt": "2026-02-15T19:31:54.790Z"}
FRAME = (b'{"type":"data","channel":"orders","event":"UPDATE","payload":'
         + json.dumps(ORDER).encode() + b',"ts":1771183909790,"seq":%d,"requireAck":true}')


def run_frames(compiled: bool, frames: list[bytes]) -> tuple[list[Any], dict[str, Any]]:
    from test_tech55_listener import normal

    client = Tech55Client("ws://127.0.0.1:1/ws", api_key="k")
    client.compiled = compiled
    log: list[Any] = []
    client.on("orders", lambda e, p, seq, ts: log.append((e, normal(p), seq, ts)))
    client.on("error", lambda exc: log.append(("error", normal(exc))))
    client.on("unknown", lambda m: log.append(("unknown", m)))
    listener = client._make_listener()
    client._listener = listener
    client._set_logged_in(True, listener)
    client.gate.release()
    for f in frames:
        listener.feed(f)
    stats = client.stats()
    return log, {k: stats[k] for k in ("seq", "duplicates", "gaps", "errors")}


def test_frames_cut_at_every_byte_and_corrupted() -> None:
    whole = FRAME % 1
    frames = [whole]
    seq = 2
    for i in range(len(whole)):
        frames.append((FRAME % seq)[:i])
        frames.append(FRAME % (seq + 1))
        seq += 2
    for i in range(0, len(whole), 3):
        for b in (b"x", b'"', b"}", b"\\", b"\xff", b"0"):
            f = bytearray(FRAME % seq)
            f[i:i + 1] = b
            frames.append(bytes(f))
            seq += 1
    got = run_frames(True, frames)
    assert got == run_frames(False, frames)
    assert got[0][0][1][1]["orderId"] == 327
