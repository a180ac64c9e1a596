"""ChunkedLineSplitter: the compiled codec against its pure-Python twin and a model."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framing_helpers import (
    chunk,
    chunked_bodies,
    model_lines,
    mutated_bodies,
    split_at,
    transcript,
)
from oddswire import reference
from oddswire.codec import ChunkedLineSplitter, CountingLineSink
from oddswire.errors import ProtocolError

IMPLS = [ChunkedLineSplitter, reference.ChunkedLineSplitter]
ids = ["compiled", "reference"]


def databet_like_payload(n: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        odds = ",".join(
            f'{{"id":"{j}","value":"{rng.uniform(1.01, 30):.2f}","status":0,"is_active":true}}'
            for j in range(rng.randint(2, 40))
        )
        lines.append(
            f'{{"version":{i},"event_type":"markets_updated",'
            f'"sport_event_id":"{rng.randint(1, 999)}",'
            f'"markets":[{{"id":"1","status":0,"odds":[{odds}]}}]}}'.encode()
        )
    return b"\n".join(lines) + b"\n"


# --- property tests: compiled == reference == model -------------------------------------


@given(chunked_bodies(), st.lists(st.integers(0, 10_000), max_size=6))
def test_valid_bodies_match_model_at_random_splits(case, cuts):
    payload, body = case
    expected_lines, expected_tail = model_lines(payload)
    pieces = split_at(body, cuts)
    for impl in IMPLS:
        assert transcript(impl(), pieces) == (expected_lines, expected_tail, None, None)


@given(chunked_bodies())
def test_valid_bodies_split_at_every_byte_boundary(case):
    payload, body = case
    expected = (*model_lines(payload), None, None)
    for k in range(len(body) + 1):
        assert transcript(ChunkedLineSplitter(), [body[:k], body[k:]]) == expected
    assert transcript(ChunkedLineSplitter(), [body[i:i + 1] for i in range(len(body))]) == expected


@given(mutated_bodies(), st.lists(st.integers(0, 10_000), max_size=4))
def test_invalid_streams_fail_identically(body, cuts):
    pieces = split_at(body, cuts)
    compiled = transcript(ChunkedLineSplitter(), pieces)
    assert compiled == transcript(reference.ChunkedLineSplitter(), pieces)
    # Where the stream is cut does not change what is decoded, nor where it fails.
    assert compiled == transcript(ChunkedLineSplitter(), [body])


@given(mutated_bodies(), st.integers(1, 60))
def test_line_limit_agrees_with_reference(body, limit):
    for k in range(0, len(body) + 1, 3):
        pieces = [body[:k], body[k:]]
        compiled = transcript(ChunkedLineSplitter(limit), pieces)
        assert compiled == transcript(reference.ChunkedLineSplitter(limit), pieces)
        assert compiled == transcript(ChunkedLineSplitter(limit), [body])


def test_realistic_body_split_at_every_byte_boundary():
    payload = databet_like_payload(3)
    body = chunk(payload, [97, 13, 1, 400])
    expected = (*model_lines(payload), None, None)
    for impl in IMPLS:
        for k in range(len(body) + 1):
            assert transcript(impl(), [body[:k], body[k:]]) == expected


# --- the RFC 9112 section 7.1 table -----------------------------------------------------

MALFORMED = [
    # (body, message fragment, offset)
    (b"x\r\n", "invalid character 'x' in chunk size", 0),
    (b"0x5\r\nhello\r\n0\r\n\r\n", "invalid character 'x' in chunk size", 1),
    (b"+5\r\nhello\r\n", "invalid character '+' in chunk size", 0),
    (b"-5\r\nhello\r\n", "invalid character '-' in chunk size", 0),
    (b" 5\r\nhello\r\n", "invalid character ' ' in chunk size", 0),
    (b"1_0\r\n", "invalid character '_' in chunk size", 1),
    ("\u0665\r\n".encode(), "in chunk size", 0),
    ("\uff15\r\n".encode(), "in chunk size", 0),
    (b"\r\n", "invalid character '\\r' in chunk size", 0),
    (b"4000000000000001\r\n", "chunk size over 2**62", 15),
    (b"10000000000000000000\r\n", "chunk size over 2**62", 16),
    (b"5\nhello\r\n0\r\n\r\n", "bare LF after chunk size", 1),
    (b"5\rXhello\r\n", "CR not followed by LF", 2),
    (b"3\r\nxxx__1a\r\n", "chunk data not followed by CRLF", 6),
    (b"3\r\nxxxx\r\n0\r\n\r\n", "chunk data not followed by CRLF", 6),
    (b"3\r\nxxx\n0\r\n\r\n", "chunk data not followed by CRLF", 6),
    (b"3\r\nxxx\rX0\r\n\r\n", "chunk data not followed by CRLF", 7),
    (b"1;a\nb\r\nx\r\n0\r\n\r\n", "bare LF in chunk extension", 3),
    (b"1;a=b\nc\r\nx\r\n", "bare LF in chunk extension", 5),
    (b"1 \n", "bare LF in chunk size line", 2),
    (b"1;\r\nx\r\n", "chunk extension without a name", 2),
    (b"1;=b\r\nx\r\n", "chunk extension without a name", 2),
    (b"1;a=\r\nx\r\n", "chunk extension without a value", 4),
    (b'1;a="b\r\nx\r\n', "in quoted chunk extension", 6),
    (b"1;a@b\r\nx\r\n", "invalid character '@' in chunk extension", 3),
    (b"2 erfrferferf\r\nxx\r\n", "invalid character 'e' in chunk size", 2),
    (b"1 1\r\nx\r\n", "invalid character '1' in chunk size", 2),
    (b"5\r\nhello\r\n\r\n", "invalid character '\\r' in chunk size", 10),
    (b"0\r\nX-A 1\r\n\r\n", "invalid character ' ' in trailer field name", 6),
    (b"0\r\nX-A :1\r\n\r\n", "invalid character ' ' in trailer field name", 6),
    (b"0\r\nX-A: 1\r\n folded\r\n\r\n", "obsolete line folding", 11),
    (b"0\r\nX: 1\n\r\n", "invalid character '\\n' in trailer field value", 7),
    (b"0\r\n:x\r\n\r\n", "invalid character ':' in trailer section", 3),
    (b"0\r\n\rX", "CR not followed by LF in trailer section", 4),
    (b"0\r\n\r\nX", "data after the end of the chunked body", 5),
]


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
@pytest.mark.parametrize(("body", "fragment", "offset"), MALFORMED)
def test_malformed_framing_raises_with_offset(impl, body, fragment, offset):
    splitter = impl()
    with pytest.raises(ProtocolError) as info:
        splitter.feed(body)
        splitter.eof()
    assert fragment in str(info.value)
    assert info.value.offset == offset
    assert splitter.failed
    with pytest.raises(ProtocolError, match="already failed"):
        splitter.feed(b"0\r\n\r\n")
    with pytest.raises(ProtocolError, match="already failed"):
        splitter.eof()


ACCEPTED = [
    b"5 \r\nhello\r\n0\r\n\r\n",
    b"5\t \r\nhello\r\n0\r\n\r\n",
    b"5 ; a = b\r\nhello\r\n0\r\n\r\n",
    b"5;a;b=c;d=\"e;f\\\"g\"\r\nhello\r\n0\r\n\r\n",
    b"0000000000000000000005\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhello\r\n000;last=1\r\n\r\n",
    b"5\r\nhello\r\n0\r\nX-A: 1\r\nX-B:\r\n\r\n",
]


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
@pytest.mark.parametrize("body", ACCEPTED)
def test_accepted_framing_variants(impl, body):
    splitter = impl()
    assert splitter.feed(body) == []
    assert splitter.done
    assert splitter.eof() == [b"hello"]


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_hex_digits_of_either_case(impl):
    payload = bytes(range(65, 91)) * 10 + b"\n"
    for upper in (False, True):
        body = chunk(payload, [0xAB, 0x1F], upper=upper)
        assert body.startswith(b"AB\r\n" if upper else b"ab\r\n")
        assert impl().feed(body) == [payload[:-1]]


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_largest_allowed_chunk_size_is_accepted_then_truncated(impl):
    splitter = impl()
    assert splitter.feed(b"4000000000000000\r\nabc\n") == [b"abc"]
    with pytest.raises(ProtocolError, match="cut short in chunk data"):
        splitter.eof()


# --- sizes, spans and splits ------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_one_mib_line(impl):
    line = bytes(random.Random(1).choice(b"abcdef{}:,\"0123456789") for _ in range(2**20))
    body = chunk(line + b"\r\n", [16384, 5000])
    splitter = impl()
    out = []
    for i in range(0, len(body), 65536):
        out += splitter.feed(body[i:i + 65536])
    assert out == [line]
    assert splitter.done and splitter.eof() == []


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_line_spanning_hundreds_of_chunks(impl):
    lines = [b"x" * 3001, b"y" * 2999]
    body = chunk(b"\n".join(lines) + b"\n", [7])
    assert body.count(b"\r\n7\r\n") > 800
    assert impl().feed(body) == lines


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
@pytest.mark.parametrize("where", ["inside chunk", "between chunks", "framing CRLF"])
def test_crlf_split_across_reads(impl, where):
    if where == "inside chunk":
        body = b"9\r\nabc\r\ndef\n\r\n0\r\n\r\n"
        cut = body.index(b"\r\nd") + 1
    elif where == "between chunks":
        body = b"4\r\nabc\r\r\n4\r\n\ndef\r\n0\r\n\r\n"
        cut = body.index(b"\r\r\n") + 1
    else:
        body = b"4\r\nabc\n\r\n0\r\n\r\n"
        cut = body.index(b"\n\r\n") + 2
    splitter = impl()
    out = splitter.feed(body[:cut]) + splitter.feed(body[cut:])
    assert out[0] == b"abc"
    assert splitter.done


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_accepts_any_bytes_like(impl, kind):
    body = chunk(b"one\ntwo\r\nthree", [4])
    splitter = impl()
    assert splitter.feed(kind(body)) == [b"one", b"two"]
    assert splitter.eof() == [b"three"]


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_lines_of_spaces_returned_and_empty_lines_skipped(impl):
    body = chunk(b"\n\r\n  \n\t\na\rb\r\r\n", [3])
    assert impl().feed(body) == [b"  ", b"\t", b"a\rb\r"]


# --- max_line_bytes ---------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_line_of_exactly_max_bytes_passes(impl):
    body = chunk(b"12345\r\n1234\n", [1])
    assert impl(5).feed(body) == [b"12345", b"1234"]


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_line_over_max_bytes_fails_at_the_first_extra_byte(impl):
    body = chunk(b"ab\n123456\n", [100])
    splitter = impl(5)
    with pytest.raises(ProtocolError, match="max_line_bytes") as info:
        splitter.feed(body)
    assert info.value.offset == body.index(b"6")
    assert info.value.lines == [b"ab"]


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_a_failed_splitter_releases_its_buffer(impl):
    """The rejected line's buffer must not live on in exception -> traceback -> splitter."""
    splitter = impl(4 * 2**20)
    big = b"x" * (3 * 2**20)
    splitter.feed(b"%x\r\n" % (2 * len(big)) + big)
    assert splitter.pending == len(big) and splitter.capacity >= len(big)
    with pytest.raises(ProtocolError, match="max_line_bytes") as info:
        splitter.feed(big)
    assert info.value.__traceback__ is not None
    assert (splitter.pending, splitter.capacity, splitter.failed) == (0, 0, True)
    for fail in (lambda s: s.feed(b"zz"), lambda s: s.eof()):  # framing error, cut short
        splitter = impl()
        splitter.feed(b"a\r\n0123456789")
        assert splitter.capacity > 0
        with pytest.raises(ProtocolError):
            fail(splitter)
        assert (splitter.pending, splitter.capacity) == (0, 0)


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_pending_cr_does_not_trip_the_limit(impl):
    splitter = impl(5)
    assert splitter.feed(b"6\r\n12345\r\r\n") == []
    assert splitter.pending == 6
    assert splitter.feed(b"1\r\n\n\r\n") == [b"12345"]


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_cr_at_the_limit_followed_by_data_fails(impl):
    splitter = impl(5)
    splitter.feed(b"6\r\n12345\r\r\n")
    with pytest.raises(ProtocolError) as info:
        splitter.feed(b"1\r\nx\r\n")
    assert info.value.offset == 14


# --- end of stream ----------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_truncated_body_keeps_delivered_lines_and_raises(impl):
    splitter = impl()
    assert splitter.feed(b"b\r\nfirst\npart") == [b"first"]
    assert not splitter.done
    with pytest.raises(ProtocolError, match="cut short in chunk data"):
        splitter.eof()
    with pytest.raises(ProtocolError, match="already failed"):
        splitter.feed(b"")


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
@pytest.mark.parametrize(("body", "where"), [
    (b"", "chunk size"), (b"5", "chunk size"), (b"5\r", "chunk size line"),
    (b"5;a", "chunk extension"), (b"1\r\nx", "CRLF after chunk data"),
    (b"0\r\n", "trailer section"), (b"0\r\nX: 1", "trailer field"), (b"0\r\n\r", "final CRLF"),
])
def test_eof_in_every_state_names_it(impl, body, where):
    splitter = impl()
    splitter.feed(body)
    with pytest.raises(ProtocolError, match=f"cut short in {where}") as info:
        splitter.eof()
    assert info.value.offset == len(body)


@pytest.mark.parametrize("impl", IMPLS, ids=ids)
def test_eof_returns_last_line_once(impl):
    splitter = impl()
    splitter.feed(chunk(b"a\nlast\r", [2]))
    assert splitter.eof() == [b"last"]
    assert splitter.eof() == []


# --- the C-level sink -------------------------------------------------------------------


@given(chunked_bodies(), st.lists(st.integers(0, 10_000), max_size=4))
def test_counting_sink_sees_what_feed_returns(case, cuts):
    payload, body = case
    expected, _ = model_lines(payload)
    sink = CountingLineSink()
    splitter = ChunkedLineSplitter()
    for piece in split_at(body, cuts):
        assert splitter.feed_into(piece, sink) == 0
    assert (sink.lines, sink.bytes) == (len(expected), sum(map(len, expected)))


def test_feed_into_requires_a_sink():
    with pytest.raises(TypeError):
        ChunkedLineSplitter().feed_into(b"0\r\n\r\n", None)


def test_reference_sink_exception_leaves_splitter_failed():
    def sink(line: bytes) -> None:
        raise RuntimeError("consumer broke")

    splitter = reference.ChunkedLineSplitter()
    with pytest.raises(RuntimeError, match="consumer broke"):
        splitter.feed_into(b"2\r\na\n\r\n", sink)
    assert splitter.failed
    with pytest.raises(ProtocolError, match="a line sink raised"):
        splitter.feed(b"0\r\n\r\n")


def test_invalid_max_line_bytes():
    for impl in IMPLS:
        with pytest.raises(ValueError):
            impl(0)
