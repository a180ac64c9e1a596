"""Builders and transcripts shared by the framing tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hypothesis import strategies as st

from oddswire.errors import ProtocolError


def model_lines(payload: bytes) -> tuple[list[bytes], list[bytes]]:
    """An independent oracle: the lines feed() must return, and what eof() returns."""
    pieces = payload.split(b"\n")
    lines = [p[:-1] if p.endswith(b"\r") else p for p in pieces[:-1]]
    last = pieces[-1][:-1] if pieces[-1].endswith(b"\r") else pieces[-1]
    return [line for line in lines if line], [last] if last else []


def chunk(payload: bytes, sizes: Iterable[int], *, ext: bytes = b"", upper: bool = False,
          zeros: int = 0, trailers: Sequence[bytes] = (), last_ext: bytes = b"") -> bytes:
    """Encode payload as a chunked body, cutting it at the given chunk sizes (cycled)."""
    out = bytearray()
    sizes = list(sizes) or [len(payload) or 1]
    pos = i = 0
    while pos < len(payload):
        n = max(1, sizes[i % len(sizes)])
        i += 1
        data = payload[pos:pos + n]
        pos += len(data)
        size = format(len(data), "X" if upper else "x")
        out += b"0" * zeros + size.encode() + ext + b"\r\n" + data + b"\r\n"
    out += b"0" + last_ext + b"\r\n"
    for t in trailers:
        out += t + b"\r\n"
    out += b"\r\n"
    return bytes(out)


def transcript(splitter: Any, pieces: Iterable[bytes]) -> tuple[Any, ...]:
    """Everything observable from feeding pieces then eof(): lines, error and where."""
    lines: list[bytes] = []
    try:
        for piece in pieces:
            lines += splitter.feed(piece)
        tail = splitter.eof()
        return (lines, tail, None, None)
    except ProtocolError as exc:
        lines += exc.lines
        return (lines, None, str(exc), exc.offset)


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, prev = [], 0
    for p in points:
        pieces.append(data[prev:p])
        prev = p
    pieces.append(data[prev:])
    return pieces


line_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))
terminators = st.sampled_from([b"\n", b"\r\n"])
extensions = st.sampled_from([
    b"", b";a", b";a=b", b" ;a=b", b"; a = b", b';name="quoted;value"', b';q="a\\"b"',
    b";x=1;y=2", b"\t;k=v\t", b"  ",
])
trailer_sets = st.lists(st.sampled_from([b"X-A: 1", b"Expires:", b"x-b:\tv v"]), max_size=2)


@st.composite
def ndjson_payloads(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(line_bytes, terminators), max_size=12))
    payload = b"".join(line + term for line, term in lines)
    if draw(st.booleans()):
        payload += draw(line_bytes)  # a last line with no newline
    return payload


@st.composite
def chunked_bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(payload, chunked encoding of it) with random chunking, case, extensions, trailers."""
    payload = draw(ndjson_payloads())
    body = chunk(
        payload,
        draw(st.lists(st.integers(1, 64), min_size=1, max_size=8)),
        ext=draw(extensions),
        upper=draw(st.booleans()),
        zeros=draw(st.integers(0, 3)),
        trailers=draw(trailer_sets),
        last_ext=draw(st.sampled_from([b"", b";done", b"; a=1"])),
    )
    return payload, body


MUTATION_BYTES = b"\r\n \t;=\"\\0aFgx:\x00\xff-+_"


@st.composite
def mutated_bodies(draw: st.DrawFn) -> bytes:
    """A valid body with a few bytes replaced, inserted or deleted: mostly invalid streams."""
    _, body = draw(chunked_bodies())
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.sampled_from(MUTATION_BYTES))
        if op == "insert" or pos == len(data):
            data.insert(pos, byte)
        elif op == "replace":
            data[pos] = byte
        else:
            del data[pos]
    return bytes(data)
