"""RecordSplitter (SignalR 0x1E framing): compiled against its pure-Python twin."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framing_helpers import split_at
from oddswire import reference
from oddswire.codec import RecordSplitter
from oddswire.errors import ProtocolError

IMPLS = [RecordSplitter, reference.RecordSplitter]
ids = ["compiled", "reference"]

streams = st.binary(max_size=300).map(lambda b: b.replace(b"\x1f", b"\x1e"))


def records_transcript(splitter, pieces):
    out = []
    try:
        for piece in pieces:
            out += splitter.feed(piece)
        pending = splitter.pending
        splitter.eof()
        return (out, pending, None, None)
    except ProtocolError as exc:
        return (out + exc.lines, None, str(exc), exc.offset)


def model(stream: bytes) -> tuple:
    *records, rest = stream.split(b"\x1e")
    if rest:
        return (records, len(rest), "stream ended inside a record "
                f"({len(rest)} bytes pending) (at byte offset {len(stream)})", len(stream))
    return (records, 0, None, None)


@given(streams, st.lists(st.integers(0, 1000), max_size=5))
def test_matches_model_at_random_splits(stream, cuts):
    pieces = split_at(stream, cuts)
    for impl in IMPLS:
        got = records_transcript(impl(), pieces)
        expected = model(stream)
        assert got[0] == expected[0]
        assert got[2:] == expected[2:]


@given(streams)
def test_every_byte_boundary(stream):
    expected = records_transcript(RecordSplitter(), [stream])
    for k in range(len(stream) + 1):
        assert records_transcript(RecordSplitter(), [stream[:k], stream[k:]]) == expected


@given(streams, st.integers(1, 20), st.lists(st.integers(0, 1000), max_size=5))
def test_record_limit_agrees_with_reference(stream, limit, cuts):
    pieces = split_at(stream, cuts)
    compiled = records_transcript(RecordSplitter(limit), pieces)
    assert compiled == records_transcript(reference.RecordSplitter(limit), pieces)
    assert compiled == records_transcript(RecordSplitter(limit), [stream])


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_empty_records_are_returned(impl):
    assert impl().feed(b"\x1e{}\x1e\x1e") == [b"", b"{}", b""]


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_pending_and_eof(impl):
    splitter = impl()
    assert splitter.feed(b'{"type":6}\x1e{"ty') == [b'{"type":6}']
    assert splitter.pending == 4
    assert splitter.feed(memoryview(b'pe":6}\x1e')) == [b'{"type":6}']
    assert splitter.pending == 0
    assert splitter.eof() is None
    splitter.feed(bytearray(b"{"))
    with pytest.raises(ProtocolError, match="1 bytes pending"):
        splitter.eof()


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_over_long_record_fails_and_stays_failed(impl):
    splitter = impl(4)
    with pytest.raises(ProtocolError, match="max_record_bytes") as info:
        splitter.feed(b"ab\x1eabcdef\x1e")
    assert info.value.offset == 7
    assert info.value.lines == [b"ab"]
    with pytest.raises(ProtocolError, match="already failed"):
        splitter.feed(b"\x1e")


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_a_failed_splitter_releases_its_buffer(impl):
    splitter = impl(4 * 2**20)
    splitter.feed(b"x" * 3 * 2**20)
    assert splitter.capacity >= 3 * 2**20
    with pytest.raises(ProtocolError, match="max_record_bytes"):
        splitter.feed(b"x" * (2**20 + 1) + b"\x1e")
    assert (splitter.pending, splitter.capacity, splitter.failed) == (0, 0, True)
    splitter = impl()
    splitter.feed(b"partial")
    with pytest.raises(ProtocolError, match="pending"):
        splitter.eof()
    assert (splitter.pending, splitter.capacity) == (0, 0)


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_long_record_across_many_reads(impl):
    record = b"x" * 100_000
    splitter = impl()
    out = []
    for i in range(0, len(record), 999):
        out += splitter.feed(record[i:i + 999])
    out += splitter.feed(b"\x1e")
    assert out == [record]
