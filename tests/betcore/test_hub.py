"""HubDecoder: SignalR JSON hub protocol decoding on top of the compiled RecordSplitter."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oddswire.betcore import HANDSHAKE_REQUEST, HubDecoder, MessageType, encode_message
from oddswire.errors import HandshakeError, ProtocolError

VALID = [
    {"type": 1, "target": "WholeGamesInfoSubscribe", "arguments": [{"sId": 1}]},
    {"type": 1, "invocationId": "7", "target": "Send", "arguments": [], "streamIds": ["a"],
     "headers": {"k": "v"}},
    {"type": 2, "invocationId": "7", "item": None},
    {"type": 3, "invocationId": "7"},
    {"type": 3, "invocationId": "7", "result": [1, 2]},
    {"type": 3, "invocationId": "7", "error": "boom"},
    {"type": 4, "invocationId": "7", "target": "Stream", "arguments": [1]},
    {"type": 5, "invocationId": "7"},
    {"type": 6},
    {"type": 7},
    {"type": 7, "error": "shutdown", "allowReconnect": True},
    {"type": 8, "sequenceId": 3},
    {"type": 9, "sequenceId": 4},
    {"type": 6, "unknownField": {"ignored": True}},
    {"type": 42, "futureField": 1},
]

INVALID = [
    (b"[1]", "expected an object"),
    (b"{}", "missing required property 'type'"),
    (b'{"type":"1"}', "'type' must be an integer"),
    (b'{"type":true}', "'type' must be an integer"),
    (b'{"type":1.0}', "'type' must be an integer"),
    (b'{"type":1,"arguments":[]}', "missing required property 'target'"),
    (b'{"type":1,"target":"","arguments":[]}', "'target' must not be empty"),
    (b'{"type":1,"target":"T"}', "missing required property 'arguments'"),
    (b'{"type":1,"target":"T","arguments":{}}', "'arguments' must be an array"),
    (b'{"type":1,"target":"T","arguments":[],"invocationId":5}', "'invocationId' must be a str"),
    (b'{"type":1,"target":"T","arguments":[],"streamIds":[1]}', "'streamIds'"),
    (b'{"type":1,"target":"T","arguments":[],"headers":{"a":1}}', "'headers'"),
    (b'{"type":2,"invocationId":"1"}', "missing required property 'item'"),
    (b'{"type":3}', "missing required property 'invocationId'"),
    (b'{"type":3,"invocationId":"1","result":1,"error":"x"}', "both 'result' and 'error'"),
    (b'{"type":3,"invocationId":"1","error":5}', "'error' must be a string"),
    (b'{"type":4,"target":"T","arguments":[]}', "missing required property 'invocationId'"),
    (b'{"type":5}', "missing required property 'invocationId'"),
    (b'{"type":7,"allowReconnect":"yes"}', "'allowReconnect' must be a boolean"),
    (b'{"type":8}', "missing required property 'sequenceId'"),
    (b'{"type":9,"sequenceId":"1"}', "'sequenceId' must be an integer"),
    (b"", "empty record"),
    (b"{", "not valid JSON"),
    (b'{"type":6,"x":NaN}', "not valid JSON"),
    (b'\xef\xbb\xbf{"type":6}', "not valid JSON"),
    (b'{"type":6,"x":"\\ud800"}', "not valid JSON"),
    (b'{"type":6,"x":"\xed\xa0\x80"}', "not valid JSON"),
]


def test_message_types_are_the_protocol_numbers():
    assert [m.value for m in MessageType] == list(range(1, 10))


@pytest.mark.parametrize("message", VALID)
def test_valid_messages_decode(message):
    assert HubDecoder().feed(encode_message(message)) == [message]


@pytest.mark.parametrize(("record", "fragment"), INVALID)
def test_invalid_records_raise(record, fragment):
    with pytest.raises(ProtocolError, match=fragment.replace("(", r"\(")):
        HubDecoder().feed(record + b"\x1e")


def test_bad_record_loses_nothing_else():
    decoder = HubDecoder()
    with pytest.raises(ProtocolError) as info:
        decoder.feed(b'{"type":6}\x1e{"type":"x"}\x1e{"type":8,"sequenceId":1}\x1e')
    assert info.value.messages == [{"type": 6}]
    assert decoder.feed(b"") == [{"type": 8, "sequenceId": 1}]


@given(st.lists(st.sampled_from(VALID), max_size=8), st.data())
def test_messages_split_anywhere(messages, data):
    wire = b"".join(encode_message(m) for m in messages)
    decoder = HubDecoder()
    cut = data.draw(st.integers(0, len(wire)))
    out = decoder.feed(wire[:cut]) + decoder.feed(wire[cut:])
    assert out == messages
    decoder.eof()


def test_handshake_then_messages_in_the_same_read():
    decoder = HubDecoder(handshake=True)
    assert decoder.feed(b"{") == []
    assert decoder.handshake is None
    out = decoder.feed(b'"minorVersion":1}\x1e{"type":6}\x1e')
    assert decoder.handshake == {"minorVersion": 1}
    assert out == [{"type": 6}]


@pytest.mark.parametrize(("response", "error", "fragment"), [
    (b'{"error":"Requested protocol is not available"}', HandshakeError, "not available"),
    (b'{"error":""}', HandshakeError, "refused"),
    (b'{"error":null}', ProtocolError, "'error' must be a string"),
    (b'{"error":1}', ProtocolError, "'error' must be a string"),
    (b'{"type":6}', ProtocolError, "expected a handshake response"),
    (b"[]", ProtocolError, "expected an object"),
    (b"", ProtocolError, "empty record"),
])
def test_handshake_failures(response, error, fragment):
    with pytest.raises(error, match=fragment) as info:
        HubDecoder(handshake=True).feed(response + b"\x1e")
    if error is ProtocolError:
        assert not isinstance(info.value, HandshakeError)


def test_eof_with_unfinished_record():
    decoder = HubDecoder()
    decoder.feed(b'{"type":')
    assert decoder.pending == 8
    with pytest.raises(ProtocolError, match="pending"):
        decoder.eof()


def test_eof_before_the_handshake_response():
    with pytest.raises(ProtocolError, match="before the handshake response"):
        HubDecoder(handshake=True).eof()
    decoder = HubDecoder(handshake=True)
    decoder.feed(b"")
    with pytest.raises(ProtocolError, match="before the handshake response"):
        decoder.eof()
    decoder = HubDecoder(handshake=True)
    with pytest.raises(ProtocolError, match="pending"):  # an unfinished response says so
        decoder.feed(b'{"minor')
        decoder.eof()
    decoder = HubDecoder(handshake=True)
    assert decoder.feed(b"{}\x1e") == []
    decoder.eof()  # the handshake came: a clean end
    HubDecoder().eof()  # no handshake expected: nothing received is a clean end


def test_handshake_request_is_json_protocol_v1():
    assert orjson.loads(HANDSHAKE_REQUEST[:-1]) == {"protocol": "json", "version": 1}
    assert HANDSHAKE_REQUEST.endswith(b"\x1e")
