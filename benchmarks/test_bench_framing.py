"""Framing throughput: chunked NDJSON line splitting and SignalR record splitting.

Fixtures: a DATA.BET body (500 snapshots ~7.7 KB, then 5,000 logs 200 B-12 KB, 70%
markets_updated ~960 B) chunked at 1-16 KiB with boundaries mid-line, delivered in 64 KiB
reads; and a BETCORE hub stream of ~2.5 KB WholeGamesInfo records in 64 KiB reads.
"""

from __future__ import annotations

import hashlib
import random

import h11
import httptools
import orjson
import pytest

from conftest import scale
from oddswire import reference
from oddswire.betcore import encode_message
from oddswire.codec import ChunkedLineSplitter, CountingLineSink, RecordSplitter
from oddswire.sim import DatabetWorld

READ = 65536


def _reads(data: bytes) -> list[bytes]:
    return [data[i:i + READ] for i in range(0, len(data), READ)]


def _chunked(payload: bytes, seed: int = 3) -> bytes:
    rng = random.Random(seed)
    out, pos = bytearray(), 0
    while pos < len(payload):
        piece = payload[pos:pos + rng.randint(1024, 16384)]
        pos += len(piece)
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return bytes(out + b"0\r\n\r\n")


def _digest(lines: list[bytes]) -> tuple[int, int, str]:
    h = hashlib.blake2b(digest_size=8)
    for line in lines:
        h.update(line)
        h.update(b"\n")
    return len(lines), sum(map(len, lines)), h.hexdigest()


WORLD = DatabetWorld(seed=11)
LINES = WORLD.snapshot_lines() + WORLD.lines(scale(5000))
PAYLOAD = b"\n".join(LINES) + b"\n"
BODY = _chunked(PAYLOAD)
BODY_READS = _reads(BODY)
EXPECTED = _digest(LINES)
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def drain(cls, reads):
    """Feed every read to a fresh splitter; what eof() returns (lines or None) is kept."""
    def run():
        splitter = cls()
        out = []
        for read in reads:
            out += splitter.feed(read)
        out += splitter.eof() or []
        return out
    return run


def run_sink():
    splitter = ChunkedLineSplitter()
    sink = CountingLineSink()
    for read in BODY_READS:
        splitter.feed_into(read, sink)
    return sink


class _LineBuffer:
    """What a careful Python developer writes on top of an HTTP parser."""

    def __init__(self) -> None:
        self.rest = b""
        self.lines: list[bytes] = []

    def on_body(self, body: bytes) -> None:
        data = self.rest + body if self.rest else body
        parts = data.split(b"\n")
        self.rest = parts.pop()
        self.lines += [p for p in parts if p]


def run_httptools():
    buf = _LineBuffer()
    parser = httptools.HttpResponseParser(buf)
    parser.feed_data(HEAD)
    for read in BODY_READS:
        parser.feed_data(read)
    return buf.lines


def run_h11():
    buf = _LineBuffer()
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/all", headers=[("Host", "feed")]))
    conn.send(h11.EndOfMessage())
    for read in [HEAD, *BODY_READS]:
        conn.receive_data(read)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or type(event) is h11.EndOfMessage:
                break
            if type(event) is h11.Data:
                buf.on_body(event.data)
    return buf.lines


CHUNKED = [
    ("oddswire feed()", "oddswire", drain(ChunkedLineSplitter, BODY_READS), _digest),
    ("oddswire feed_into(C sink)", "oddswire", run_sink, lambda s: (s.lines, s.bytes)),
    ("reference twin", "twin", drain(reference.ChunkedLineSplitter, BODY_READS), _digest),
    ("httptools + Python lines", "peer", run_httptools, _digest),
    ("h11 + Python lines", "peer", run_h11, _digest),
]


@pytest.mark.parametrize(("library", "kind", "fn", "result"), CHUNKED,
                         ids=[c[0] for c in CHUNKED])
def test_chunked_ndjson(bench, library, kind, fn, result):
    expected = EXPECTED if result is _digest else EXPECTED[:2]
    bench("chunked NDJSON (DATA.BET body, 64 KiB reads)", library, kind, fn,
          nbytes=len(BODY), units=len(LINES), unit="lines", result=result, expected=expected)


GAME = orjson.loads(b"""{"wgi":[{"i":30000603282,"t":3,"ge":"PB650351","s":2,"ps":1,"cr":1,
"sdt":"2025-06-19T15:56:50.529Z","fdt":"2025-06-19T15:59:50.529Z",
"r":[{"v":"3c","hi":1,"ra":null,"ri":1,"s":1,"sn":1,"vi":null,"h":false}],
"h":[{"i":1,"r":[],"s":0,"p":0}],"e":[{"t":196,"p":[],"c":5.5,"b":false,"sn":"03196"}],
"vs":2,"lrId":30000603281,"di":{"id":2312,"n":"PetreQA-manual","c":"Poland","a":31}}],
"tst":"2025-06-19T15:57:18.6120782Z","bt":1,"im":false,"sId":0}""")
GAME["wgi"][0]["r"] *= 16
GAME["wgi"][0]["e"] *= 16
RECORDS = []
for i in range(scale(4000)):
    GAME["sId"] = i
    RECORDS.append(encode_message({"type": 1, "target": "WholeGamesInfoSubscribe",
                                   "arguments": [GAME]}))
    if i % 20 == 0:
        RECORDS.append(encode_message({"type": 6}))
STREAM = b"".join(RECORDS)
STREAM_READS = _reads(STREAM)
EXPECTED_RECORDS = _digest([r[:-1] for r in RECORDS])


def run_bytes_split():
    rest, out = b"", []
    for read in STREAM_READS:
        parts = (rest + read if rest else read).split(b"\x1e")
        rest = parts.pop()
        out += parts
    return out


RECORD_CASES = [
    ("oddswire RecordSplitter", "oddswire", drain(RecordSplitter, STREAM_READS)),
    ("reference twin", "twin", drain(reference.RecordSplitter, STREAM_READS)),
    ("bytes.split + remainder", "peer", run_bytes_split),
]


@pytest.mark.parametrize(("library", "kind", "fn"), RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_signalr_records(bench, library, kind, fn):
    bench("SignalR 0x1E records (BETCORE stream, 64 KiB reads)", library, kind, fn,
          nbytes=len(STREAM), units=len(RECORDS), unit="records", result=_digest,
          expected=EXPECTED_RECORDS)
