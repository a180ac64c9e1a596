"""Tech55Listener (the compiled frame path of Tech55Client) against the pure-Python path
(``Tech55Client.compiled = False``): hypothesis feeds both the same random frame sequences
(in-order data, duplicates, gaps, late fills, regressions, missing or bad seqs, payloads
with unknown fields or off their schema, plain channels, unknown channels and message
types, pings, logins with the same or a new subscription, garbage, fragments) under
random callbacks (one plain function, fan-out, raising, returning a value, coroutine,
none, registered mid-stream, a hydration hold), reliable or not, acks single or batched.
Every event, every byte sent, every error and the counters must agree."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from picows import WSMsgType

from oddswire._tech55 import Payload as LazyPayload
from oddswire._tech55 import Tech55Listener
from oddswire._wire import FeedListener
from oddswire.tech55 import CHANNELS, Order, Payload, Session, Tech55Client

TYPED = ("orders", "bets", "settlements", "balance", "emergency", "betslip")
PLAIN = ("accounts", "fixtures", "currencies", "status")

ints = st.integers(min_value=-(2**40), max_value=2**40)
prices = st.floats(min_value=1.01, max_value=1000, allow_nan=False)
texts = st.text(max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | ints | prices | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6)


def typed_payload(channel: str) -> st.SearchStrategy[dict[str, Any]]:
    if channel == "orders":
        return st.fixed_dictionaries({"orderId": ints}, optional={
            "orderPrice": prices, "orderStatus": texts, "meta": json_values,
            "allowedBookmakers": st.one_of(texts, st.lists(texts, max_size=2)),
            "testOrder": st.booleans(), "fixtureId": st.none()})
    if channel in ("bets", "settlements"):
        return st.fixed_dictionaries({"betId": ints}, optional={
            "orderId": ints, "placedPrice": prices, "bookmaker": texts,
            "sentData": json_values, "settlementAmount": ints})
    if channel == "balance":
        return st.fixed_dictionaries({"balance": prices}, optional={"currency": texts})
    if channel == "emergency":
        return st.fixed_dictionaries({"active": st.booleans()}, optional={"reason": texts})
    line = st.fixed_dictionaries({}, optional={"price": prices, "limit": ints,
                                               "active": st.booleans(), "account": texts})
    return st.fixed_dictionaries({
        "outcomeId": st.integers(101, 103),
        "odds": st.dictionaries(st.sampled_from(["bk1", "bk2"]),
                                st.dictionaries(st.sampled_from(["l1", "l2"]), line,
                                                max_size=2), max_size=2)},
        optional={"fixtureId": st.sampled_from(["f1", "f2"]), "futureId": st.just("u1"),
                  "participantId": st.integers(0, 2)})


@st.composite
def payloads(draw: st.DrawFn, channel: str) -> Any:
    if channel not in TYPED:
        return draw(json_values)
    kind = draw(st.sampled_from(["typed"] * 10 + ["extra", "nested_extra", "off", "null"]))
    if kind == "null":
        return None
    p: dict[str, Any] = draw(typed_payload(channel))
    if kind == "extra":
        p["newColumn"] = draw(json_values)
    elif kind == "nested_extra" and channel == "betslip":
        p["odds"] = {"bk1": {"l1": {"price": 2.0, "zz": 1}}}
    elif kind == "off":
        first = next(iter(p))
        p[first] = "not-a-" + first
    return p


SEQ_RULES = ["next"] * 12 + ["dup", "gap", "late", "old", "none", "str", "big"]
# One action: a frame to feed (with how to split it), or something done to the client.
data_actions = st.tuples(
    st.just("data"), st.sampled_from([*CHANNELS, "weird"]), st.sampled_from(SEQ_RULES),
    st.booleans(), st.sampled_from(["INSERT", "UPDATE", None]),
    st.sampled_from(["int"] * 6 + ["none", "str"]), st.sampled_from([1, 1, 1, 2, 3]),
    st.data())
other_actions = st.one_of(
    st.tuples(st.sampled_from(["ping", "pong", "error", "garbage", "array", "other_type",
                               "login_same", "login_new", "hold", "release"])),
    st.tuples(st.just("on"), st.sampled_from(CHANNELS),
              st.sampled_from(["plain", "raising", "returning", "coroutine"])))
actions = st.lists(st.integers(0, 7).flatmap(lambda i: other_actions if i == 0 else data_actions),
                   min_size=8, max_size=60)
callback_kinds = st.sampled_from(["none", "plain", "plain", "plain", "plain", "two",
                                  "raising", "returning", "coroutine"])


class Script:
    """Turns actions into frames (seqs resolved against a model of what was sent)."""

    def __init__(self) -> None:
        self.hi = 0
        self.holes: list[int] = []
        self.sub = 1

    def seq(self, rule: str) -> Any:
        if rule == "next" or (rule in ("dup", "old") and self.hi == 0):
            self.hi += 1
            return self.hi
        if rule == "dup":
            return self.hi
        if rule == "gap":
            self.holes.extend((self.hi + 1, self.hi + 2))
            self.hi += 3
            return self.hi
        if rule == "late":
            return self.holes.pop(0) if self.holes else self.seq("next")
        if rule == "old":
            return max(1, self.hi - 5)
        if rule == "str":
            return str(self.hi + 1)
        if rule == "big":  # the next ones cross int64: compared in Python, not in C
            self.hi = max(self.hi, 2**63 - 2)
            return self.hi
        return None  # "none": no seq

    def login(self, new: bool) -> bytes:
        if new:
            self.sub += 1
            self.hi, self.holes = 0, []
        return json.dumps({"type": "login_ok", "clientName": "demo", "subscriptionId":
                           f"s{self.sub}", "features": {"batchAck": True},
                           "region": "eu"}).encode()

    def data(self, action: tuple[Any, ...]) -> bytes:
        _, channel, rule, ack, event, ts_kind, _parts, data = action
        msg: dict[str, Any] = {"type": "data", "channel": channel}
        if event is not None:
            msg["event"] = event
        payload = data.draw(payloads(channel))
        if payload is not None or data.draw(st.booleans()):
            msg["payload"] = payload
        msg["ts"] = {"int": 1771183909790, "none": None, "str": "x"}[ts_kind]
        seq = self.seq(rule)
        if seq is not None:
            msg["seq"] = seq
        if ack:
            msg["requireAck"] = True
        # Key order, spacing and escaping vary: the compiled scan takes them all or
        # hands the frame to the Python path, never reads them otherwise.
        keys = data.draw(st.permutations(list(msg)))
        return json.dumps({k: msg[k] for k in keys}, ensure_ascii=data.draw(st.booleans()),
                          separators=data.draw(st.sampled_from([(",", ":"), (", ", ": ")]))
                          ).encode()


FIXED = {"ping": b'{"type":"ping"}', "pong": b'{"type":"pong"}',
         "error": b'{"type":"error","code":"E1","message":"boom"}',
         "garbage": b'{"type":"data","channel":', "array": b'[1,2]',
         "other_type": b'{"type":"news","seq":1}'}


def normal(value: Any) -> Any:
    """What must agree about a callback argument."""
    if isinstance(value, LazyPayload):
        return (type(value).__name__, value.to_dict(), value.extra, value.raw)
    if isinstance(value, Payload):
        return (type(value).__name__, msgspec.to_builtins(value), value.extra, value.raw)
    if isinstance(value, Session):
        return ("Session", msgspec.to_builtins(value), value.extra)
    if isinstance(value, BaseException):
        return (type(value).__name__, str(value))
    return value


async def play(compiled: bool, reliable: bool, batch: bool, callbacks: dict[str, str],
               steps: list[tuple[str, Any, int]]) -> tuple[list[Any], dict[str, Any]]:
    client = Tech55Client("ws://127.0.0.1:1/ws", api_key="k", reliable=reliable,
                          batch_ack=batch, ack_batch_max=3, ack_interval=60.0)
    client.compiled = compiled
    log: list[Any] = []
    for name in client.EVENTS - set(CHANNELS):
        client.on(name, lambda *a, name=name: log.append((name, *map(normal, a))))

    def add(channel: str, kind: str, tag: str) -> None:
        def record(event: Any, payload: Any, seq: Any, ts: Any) -> Any:
            log.append((channel, tag, event, normal(payload), seq, ts))
            if kind == "raising":
                raise ValueError(f"callback {tag} failed")
            return 5 if kind == "returning" else None

        async def coroutine(event: Any, payload: Any, seq: Any, ts: Any) -> None:
            await asyncio.sleep(0)
            log.append((channel, tag, "async", event, normal(payload), seq, ts))
        if kind == "coroutine":
            client.on(channel, coroutine)
        elif kind == "two":
            client.on(channel, record)
            add(channel, "plain", tag + "'")
        elif kind != "none":
            client.on(channel, record)

    for channel, kind in callbacks.items():
        add(channel, kind, channel)
    client._send_bytes = lambda b: log.append(("sent", b))  # type: ignore[method-assign]
    listener = client._make_listener()
    assert isinstance(listener, Tech55Listener) == compiled
    client._listener = listener
    for i, (what, arg, parts) in enumerate(steps):
        if what == "hold":
            client._hydrate_enter(10)
        elif what == "release":
            if client._hydrating:
                client._hydrate_exit(None)
        elif what == "on":
            add(arg[0], arg[1], f"{arg[0]}#{i}")
        else:
            feed(listener, arg, parts)
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    client._flush()
    stats = client.stats()
    counters = {k: stats[k] for k in ("seq", "duplicates", "late", "acks_sent", "unacked",
                                      "halted", "gaps", "errors", "betslip_rows",
                                      "subscription_id", "messages", "frames")}
    counters["betslip"] = [(k, repr(client.betslip.price[r]), repr(client.betslip.limit[r]))
                           for k, r in sorted(client.betslip._rows.items())]
    counters["callback_errors"] = client.callbacks.failures
    return log, counters


def feed(listener: FeedListener, frame: bytes, parts: int) -> None:
    """One message as picows would deliver it, in ``parts`` fragments."""
    if parts == 1 or len(frame) < parts:
        listener.feed(frame)
        return
    cut = [len(frame) * i // parts for i in range(parts + 1)]
    for i in range(parts):
        listener.feed(frame[cut[i]:cut[i + 1]],
                      msg_type=WSMsgType.TEXT if i == 0 else WSMsgType.CONTINUATION,
                      fin=i == parts - 1, last_in_buffer=i == parts - 1)


@given(acts=actions, reliable=st.booleans(), batch=st.booleans(),
       callbacks=st.fixed_dictionaries({c: callback_kinds for c in CHANNELS}),
       login_first=st.sampled_from([True, True, True, False]))
def test_the_compiled_listener_agrees_with_the_python_path(
        acts: list[tuple[Any, ...]], reliable: bool, batch: bool, callbacks: dict[str, str],
        login_first: bool) -> None:
    script = Script()
    steps: list[tuple[str, Any, int]] = []
    if login_first:
        steps.append(("frame", script.login(False), 1))
    for a in acts:
        if a[0] == "data":
            steps.append(("frame", script.data(a), a[6]))
        elif a[0] in ("login_same", "login_new"):
            steps.append(("frame", script.login(a[0] == "login_new"), 1))
        elif a[0] in FIXED:
            steps.append(("frame", FIXED[a[0]], 1))
        elif a[0] == "on":
            steps.append(("on", a[1:], 1))
        else:
            steps.append((a[0], None, 1))
    compiled = asyncio.run(play(True, reliable, batch, callbacks, steps))
    python = asyncio.run(play(False, reliable, batch, callbacks, steps))
    assert compiled[0] == python[0]
    assert compiled[1] == python[1]


# --- the compiled path itself ---------------------------------------------------------------

def frame(seq: int, channel: str = "orders", ack: bool = False, **payload: Any) -> bytes:
    p = {"orderId": seq, "orderPrice": 1.5, **payload} if channel == "orders" else payload
    msg = {"type": "data", "channel": channel, "event": "INSERT", "payload": p,
           "ts": 1771183909790, "seq": seq}
    if ack:
        msg["requireAck"] = True
    return json.dumps(msg).encode()


def logged_in(client: Tech55Client) -> Any:
    listener = client._make_listener()
    client._listener = listener
    listener.feed(b'{"type":"login_ok","subscriptionId":"s1"}')
    return listener


def test_in_order_messages_take_the_fast_path_and_the_rest_the_python_path() -> None:
    async def main() -> None:
        client = Tech55Client("ws://127.0.0.1:1/ws", api_key="k", reliable=True)
        got: list[tuple[int, Any]] = []
        client.on("orders", lambda e, p, seq, ts: got.append((seq, p)))
        sent: list[bytes] = []
        client._send_bytes = sent.append  # type: ignore[method-assign]
        listener = logged_in(client)
        assert listener.logged_in and listener.reliable and (listener.fast, listener.slow) == (0, 1)
        for seq in (1, 2, 3, 3, 5, 4, 6):
            listener.feed(frame(seq, ack=True))
        assert [s for s, _ in got] == [1, 2, 3, 5, 4, 6]  # 3 again dropped, 4 filled late
        assert all(type(p) is Order and p.order_id == s for s, p in got)
        # The first seq (nothing to compare with), the duplicate, the gap and the late fill
        # took the Python path; 2, 3 and 6 were delivered in C.
        assert listener.fast == 3 and listener.slow == 1 + 4
        assert sent == [b'{"type":"ack","seq":%d}' % s for s in (1, 2, 3, 3, 5, 4, 6)]
        stats = client.stats()
        assert (stats["seq"], stats["duplicates"], stats["gaps"], stats["late"]) == (6, 1, 1, 1)
        assert client._established_at is not None and client.healthy
    asyncio.run(main())


def test_routes_follow_the_callbacks_and_a_hydration_hold() -> None:
    async def main() -> None:
        client = Tech55Client("ws://127.0.0.1:1/ws", api_key="k")
        listener = logged_in(client)
        seen: list[Any] = []
        listener.feed(frame(1))  # nobody listens yet
        client.on("orders", lambda e, p, seq, ts: seen.append(("a", seq)))
        listener.feed(frame(2))
        client.on("orders", lambda e, p, seq, ts: seen.append(("b", seq)))  # fan-out now
        listener.feed(frame(3))
        assert seen == [("a", 2), ("a", 3), ("b", 3)]
        seen.clear()
        async with client.hydrating():
            listener.feed(frame(4))
            assert seen == []  # queued, not bypassed by a cached direct callback
        assert seen == [("a", 4), ("b", 4)]
        assert listener.fast == 1  # seq 2; 1 started the sequence, 3 and 4 fanned out
    asyncio.run(main())


def test_callback_errors_returns_and_coroutines_on_the_fast_path() -> None:
    async def main() -> None:
        client = Tech55Client("ws://127.0.0.1:1/ws", api_key="k", reliable=True)
        sent: list[bytes] = []
        client._send_bytes = sent.append  # type: ignore[method-assign]
        errors: list[BaseException] = []
        client.on("error", errors.append)
        done: list[int] = []

        def on_order(e: str, p: Order, seq: int, ts: int) -> Any:
            if seq == 2:
                raise RuntimeError("bot bug")
            if seq == 3:
                async def later() -> None:
                    await asyncio.sleep(0.01)
                    done.append(seq)
                return later()
            return "ignored"
        client.on("orders", on_order)
        listener = logged_in(client)
        for seq in (1, 2, 3, 4):
            listener.feed(frame(seq, ack=True))
        assert listener.fast == 3
        assert [str(e.__cause__) for e in errors] == ["bot bug"]
        assert sent == [b'{"type":"ack","seq":%d}' % s for s in (1, 2, 4)]  # 3 waits
        await asyncio.sleep(0.05)
        assert done == [3] and sent[-1] == b'{"type":"ack","seq":3}'
    asyncio.run(main())


@pytest.mark.parametrize("compiled", [True, False])
def test_a_seq_past_int64_and_unknown_fields_still_arrive(compiled: bool) -> None:
    async def main() -> None:
        client = Tech55Client("ws://127.0.0.1:1/ws", api_key="k")
        client.compiled = compiled
        got: list[tuple[int, Any]] = []
        client.on("orders", lambda e, p, seq, ts: got.append((seq, p)))
        listener = logged_in(client)
        big = 2**63 - 2
        listener.feed(frame(big))
        listener.feed(frame(big + 1))
        listener.feed(frame(big + 2, extraColumn=[1]))  # past int64: compared in Python
        assert [s for s, _ in got] == [big, big + 1, big + 2]
        assert got[2][1].extra == {"extraColumn": [1]} and got[1][1].extra == {}
    asyncio.run(main())
