"""The recording format and its failure modes: torn tails at every byte, bad headers,
another format version, zstd on and off, a recorder whose disk fails, an existing file,
the wrong client, and the ``oddswire replay`` command."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from test_replay import record_live, replay_into_fresh

from netutil import LOOPS, run
from oddswire._wire import Recorder
from oddswire.databet import DatabetClient
from oddswire.errors import ConfigError, RecordingError, RecordingVersionError
from oddswire.record import CONNECT, FRAME, HTTP_DATA, SEND, Reader, Recording
from oddswire.replay import Replayer


def small_recording(path: Path, *, compress: bool = False) -> list[tuple[int, int, bytes]]:
    rec = Recording(path, "broker", where="ws://127.0.0.1:1/", compress=compress)
    written = [(FRAME, 0x31, b'["t","eurusd",1.1,1.2,5]'), (SEND, 1, b""),
               (FRAME, 0x11, b""), (HTTP_DATA, 0, bytes(range(256)) * 3)]
    for kind, flags, payload in written:
        rec.write(kind, payload, flags)
    rec.close()
    return written


def read_all(path: Path) -> tuple[list[tuple[int, int, bytes]], Reader]:
    with Reader(path) as r:
        got = [(x.kind, x.flags, x.payload) for x in r]
    return got, r


@pytest.mark.parametrize("compress", [False, True])
def test_a_recording_reads_back_and_appends_after_reopen(tmp_path: Path,
                                                         compress: bool) -> None:
    path = tmp_path / "r.owrec"
    rec = Recording(path, "broker", where="ws://127.0.0.1:1/", compress=compress)
    written = [(FRAME, 0x31, b'["t","eurusd",1.1,1.2,5]'), (SEND, 1, b""), (FRAME, 0x11, b"")]
    for kind, flags, payload in written:
        rec.write(kind, payload, flags)
    rec.close()
    got, r = read_all(path)
    assert got == written and not r.torn_tail and r.torn == 0
    assert r.header.feed == "broker" and r.header.compressed is compress
    assert r.header.meta["where"] == "ws://127.0.0.1:1/"
    rec.reopen()  # a client's second run(): appended, a new zstd frame
    rec.write(HTTP_DATA, b"again")
    rec.close()
    got, r = read_all(path)
    assert got == [*written, (HTTP_DATA, 0, b"again")] and not r.torn_tail


def test_a_torn_tail_stops_the_reader_cleanly_at_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "r.owrec"
    written = small_recording(path)
    data = path.read_bytes()
    with Reader(path) as r:
        body = len(data) - sum(14 + len(p) for _, _, p in written)
        assert r.header.feed == "broker"
    ends = [body]
    for _, _, p in written:
        ends.append(ends[-1] + 14 + len(p))
    cut_path = tmp_path / "cut.owrec"
    for cut in range(body, len(data)):
        cut_path.write_bytes(data[:cut])
        got, r = read_all(cut_path)
        whole = sum(1 for e in ends[1:] if e <= cut)
        assert got == written[:whole]
        assert r.torn == cut - ends[whole] and r.torn_tail == (cut != ends[whole])


def test_a_torn_zstd_stream_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "r.owrec.zst"
    written = small_recording(path, compress=True)
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) - 5, len(data) // 2 + 20):
        path.write_bytes(data[:cut])
        got, r = read_all(path)
        assert r.torn_tail and got == written[:len(got)]


@pytest.mark.parametrize("content", [b"", b"OWRE", b"GIF89a and so on", b"OWREC\x01\x00\x06bro",
                                     b"OWREC\x01\x00\x06broker\x05\x00\x00\x00{\"a\"",
                                     b"OWREC\x01\x00\x06broker\x02\x00\x00\x00[]",
                                     b"OWREC\x01\x80\x06broker\x02\x00\x00\x00{}"])
def test_a_bad_header_is_a_recording_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.owrec"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=r"bad\.owrec"):
        Reader(path)
    with pytest.raises(RecordingError):
        Replayer(path)


def test_another_format_version_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "r.owrec"
    small_recording(path)
    data = bytearray(path.read_bytes())
    data[5] = 9
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingVersionError, match="version 9") as info:
        Replayer(path)
    assert info.value.version == 9 and info.value.supported == 1


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "r.owrec"
    path.write_bytes(b"precious")
    with pytest.raises(RecordingError, match="exists"):
        DatabetClient("http://127.0.0.1:1", record=path)
    assert path.read_bytes() == b"precious"


def test_a_client_of_another_feed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.owrec"
    small_recording(path)
    with pytest.raises(ConfigError, match="broker"):
        Replayer(path, client=DatabetClient("http://127.0.0.1:1"))
    with pytest.raises(ConfigError, match="speed"):
        Replayer(path, speed=0)


def test_a_failing_disk_is_reported_once_and_recording_stops() -> None:
    class Full:
        writes = 0

        def write(self, data: Any) -> int:
            self.writes += 1
            raise OSError(28, "No space left on device")

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    errors: list[BaseException] = []
    sink = Full()
    rec = Recorder(sink, flush_bytes=64, on_error=errors.append)
    for _ in range(100):
        rec.write(FRAME, b"x" * 40, 0x31)
    assert rec.failed and len(errors) == 1 and isinstance(errors[0], OSError)
    assert sink.writes == 1 and rec.buffered == 0
    rec.close()


def test_the_recorder_writes_at_its_size_bound_and_on_flush() -> None:
    class Sink:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, data: Any) -> int:
            self.data += data
            return len(data)

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    sink = Sink()
    rec = Recorder(sink, flush_bytes=1000, flush_interval=3600)
    rec.write(FRAME, b"x" * 100, 0x31)
    assert rec.buffered == 114 and not sink.data
    for _ in range(8):
        rec.write(FRAME, b"x" * 100, 0x31)
    assert rec.buffered == 0 and len(sink.data) == 9 * 114
    rec.write(FRAME, b"y", 0x31)
    rec.flush()
    assert len(sink.data) == 9 * 114 + 15 and rec.records == 10 and rec.written == len(sink.data)


def test_per_read_recorder_writes_at_the_end_of_each_socket_read(tmp_path):
    class Sink:
        def __init__(self) -> None:
            self.writes: list[int] = []

        def write(self, data: memoryview) -> int:
            self.writes.append(len(data))
            return len(data)

        def flush(self) -> None:
            pass

    sink = Sink()
    rec = Recorder(sink, flush_bytes=1 << 20, flush_interval=3600, per_read=True)
    for _ in range(3):  # three frames of one socket read: FIN, not last in the buffer
        rec.write(FRAME, b"x" * 10, 0x11)
    assert sink.writes == [] and rec.buffered == 3 * 24
    rec.write(FRAME, b"x" * 10, 0x31)  # the read's last frame: one write for all four
    assert sink.writes == [4 * 24] and rec.buffered == 0
    rec.write(FRAME, b"x", 0x11)
    rec.write(CONNECT, b"")  # any record but a mid-read frame ends what is buffered
    assert sink.writes == [4 * 24, 15 + 14] and rec.buffered == 0
    # A plain recording writes per read (a crash loses at most the read in progress); a
    # zstd one keeps the size / time bounds.
    assert Recording(tmp_path / "a.rec", "broker").writer.per_read
    assert not Recording(tmp_path / "b.rec.zst", "broker", compress=True).writer.per_read


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("feed", ["broker", "databet"])
def test_zstd_recordings_replay_the_same(feed: str, loop: str, tmp_path: Path) -> None:
    path = tmp_path / f"{feed}.owrec.zst"

    async def main() -> None:
        live_events, live_state, sim = await record_live(feed, path)
        with Reader(path) as r:
            assert r.header.compressed
        events, state, report = await replay_into_fresh(feed, path, sim)
        assert events == live_events and state == live_state and not report.torn_tail
    run(loop, main)


def test_a_torn_recording_replays_up_to_its_last_whole_record(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "b.owrec"

    async def main() -> None:
        live_events, _, sim = await record_live("broker", path)
        data = path.read_bytes()
        path.write_bytes(data[:len(data) * 2 // 3 + 3])
        with caplog.at_level(logging.WARNING, logger="oddswire.replay"):
            events, _, report = await replay_into_fresh("broker", path, sim)
        assert report.torn_tail and report.torn > 0
        assert "torn" in caplog.text
        quotes = [e for e in events if e[0] == "quote"]
        live_quotes = [e for e in live_events if e[0] == "quote"]
        assert 0 < len(quotes) < len(live_quotes) and quotes == live_quotes[:len(quotes)]
        assert ("disconnected", ("stopped",)) in events[-3:]  # the end is a clean stop
    run("asyncio", main)


def test_the_replay_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from oddswire.__main__ import main as cli

    path = tmp_path / "t.owrec"

    async def record() -> None:
        await record_live("tech55", path)
    run("asyncio", record)
    assert cli(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "55-tech" in out and "connected" in out and "records" in out
    assert cli(["replay", str(path), "--speed", "50"]) == 0

