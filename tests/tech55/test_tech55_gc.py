"""The lazily decoded payloads (``Order`` / ``Bet``) and the garbage collector: a cycle
through a cached value (``payload.meta["self"] = payload``) is collected; a payload that
holds only atomic values (str, int, float, bool, None, bytes) stays untracked, as CPython
keeps such dicts and tuples, and is tracked from the first cached container on."""

from __future__ import annotations

import copy
import gc
import json
import pickle
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from oddswire.tech55 import Bet, Order, Tech55Client

ORDER = {"orderId": 7, "client": "demo", "orderPrice": 2.5, "back": True,
         "allowedBookmakers": ["bk1", "bk2"], "meta": {"k": [1, 2.5]}, "oddsInfo": 3}
RAW = json.dumps(ORDER).encode()
UNKNOWN = json.dumps({**ORDER, "surprise": {"x": 1}}).encode()  # the slow path: _from_struct


class Sentinel:
    """Lives only inside the cycle: its weakref dies when the cycle is collected."""


def delivered(compiled: bool, payload: bytes) -> Any:
    """The payload of one orders frame, as a callback receives it (compiled listener or
    the Python frame path)."""
    client = Tech55Client("ws://127.0.0.1:1/ws", api_key="k")
    client.compiled = compiled
    got: list[Any] = []
    client.on("orders", lambda e, p, seq, ts: got.append(p))
    listener = client._make_listener()
    client._listener = listener
    client._set_logged_in(True, listener)
    client.gate.release()
    listener.feed(b'{"type":"data","channel":"orders","event":"INSERT","payload":'
                  + payload + b',"seq":1,"ts":1}')
    assert len(got) == 1 and isinstance(got[0], Order)
    return got[0]


MAKERS: dict[str, Callable[[], Any]] = {
    "scanned": lambda: Order.decode(RAW),
    "slow path": lambda: Order.decode(UNKNOWN),
    "bet": lambda: Bet.decode(b'{"betId":1,"meta":{"a":1}}'),
    "listener": lambda: delivered(True, RAW),
    "python path": lambda: delivered(False, RAW),
    "unpickled": lambda: pickle.loads(pickle.dumps(Order.decode(RAW))),
    "deepcopy": lambda: copy.deepcopy(Order.decode(RAW)),
}

def _through_a_list(p: Any, s: Sentinel) -> None:
    books: Any = p.allowed_bookmakers if type(p) is Order else None  # a cached list
    if books is not None:
        books.extend([p, s])
    else:
        p.meta.update(self=p, sentinel=s)


# How a user can close a cycle through something the payload caches.
CYCLES: dict[str, Callable[[Any, Sentinel], None]] = {
    "meta": lambda p, s: p.meta.update(self=p, sentinel=s),
    "list field": _through_a_list,
    "extra": lambda p, s: p.extra.update(self=p, sentinel=s) if p.extra
    else p.meta.update(self=p, sentinel=s),
    "nested": lambda p, s: p.meta.__setitem__("deeper", [{"back": p}, s]),
}


def _cycle(make: Callable[[], Any],
           close: Callable[[Any, Sentinel], None]) -> weakref.ref[Sentinel]:
    payload = make()
    sentinel = Sentinel()
    close(payload, sentinel)
    return weakref.ref(sentinel)


@pytest.mark.parametrize("how", list(CYCLES))
@pytest.mark.parametrize("made", list(MAKERS))
def test_cycle_through_a_cached_value_is_collected(made: str, how: str) -> None:
    gc.collect()
    alive = _cycle(MAKERS[made], CYCLES[how])
    assert alive() is not None  # only the cycle holds it: reference counting cannot free it
    gc.collect()
    assert alive() is None


def test_many_cycles_all_collected() -> None:
    gc.collect()
    alive = [_cycle(MAKERS["scanned"], CYCLES["meta"]) for _ in range(100)]
    alive += [_cycle(MAKERS["slow path"], CYCLES["extra"]) for _ in range(100)]
    gc.collect()
    assert sum(ref() is not None for ref in alive) == 0
    assert not gc.garbage


@pytest.mark.parametrize("made", ["scanned", "listener", "unpickled"])
def test_atomic_payload_is_untracked_until_a_container_is_cached(made: str) -> None:
    p = MAKERS[made]()
    assert not gc.is_tracked(p)
    assert (p.order_id, p.client, p.order_price, p.back, p.odds_info) == (7, "demo", 2.5,
                                                                             True, 3)
    assert p.user_ref is None and p.raw == RAW and p.extra == {}
    assert not gc.is_tracked(p)  # cached: str, int, float, bool, None only
    meta = p.meta
    assert gc.is_tracked(p)
    assert meta in gc.get_referents(p)  # tp_traverse visits the cache
    assert p.meta is meta and p == MAKERS[made]() and "meta={'k': [1, 2.5]}" in repr(p)


@pytest.mark.parametrize("field", ["allowed_bookmakers", "meta", "to_dict"])
def test_first_container_tracks(field: str) -> None:
    p = Order.decode(RAW)
    assert not gc.is_tracked(p)
    if field == "to_dict":
        p.to_dict()  # decodes (and caches) every field, the list and the dict among them
    else:
        getattr(p, field)
    assert gc.is_tracked(p)


def test_scalar_in_an_any_field_stays_untracked() -> None:
    p = Order.decode(b'{"orderId":1,"meta":"text","oddsInfo":null,"allowedBookmakers":"bk"}')
    assert (p.meta, p.odds_info, p.allowed_bookmakers) == ("text", None, "bk")
    assert not gc.is_tracked(p)


def test_slow_path_tracks_only_with_a_container() -> None:
    # Unknown field: the msgspec twin decodes the payload and the lazy type holds its values.
    plain = Order.decode(b'{"orderId":1,"client":"c","surprise":2}')
    assert not gc.is_tracked(plain)
    assert plain.extra == {"surprise": 2}  # extra is a cached dict
    assert gc.is_tracked(plain)
    for with_meta in (Order.decode(UNKNOWN), MAKERS["python path"]()):
        assert gc.is_tracked(with_meta)  # meta and the list were cached when it was built
        assert with_meta.meta == {"k": [1, 2.5]}


def test_a_collected_payload_still_reads_its_fields() -> None:
    # A cycle found by the collector is cleared (tp_clear): nothing else can see it then.
    # A payload that survives stays whole, whatever was cleared around it.
    p = Order.decode(RAW)
    p.meta["self"] = p
    gc.collect()
    assert p.meta["self"] is p and p.order_id == 7 and p.to_dict()["meta"] is p.meta
    del p.meta["self"]


@pytest.mark.parametrize("raw", [RAW, UNKNOWN, b'{"betId":1,"sentData":{"a":[1]},'
                                 b'"receivedData":[{}],"oddsInfo":{},"meta":[],"x":{}}'])
def test_the_collector_sees_every_cached_container(raw: bytes) -> None:
    p = (Bet if raw.startswith(b'{"betId"') else Order).decode(raw)
    containers = [v for v in p.to_dict().values() if isinstance(v, dict | list)]
    if p.extra:  # cached only when the payload has unknown fields
        containers.append(p.extra)
    assert len(containers) >= 2
    seen = gc.get_referents(p)
    assert all(any(c is r for r in seen) for c in containers)
