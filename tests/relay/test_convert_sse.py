"""SSE parsing and encoding: incremental, split at every byte, bounded, garbage-tolerant."""

import pytest

from relay.convert import SSEError
from relay.convert.sse import OPENAI_DONE, SSEEvent, SSEParser, encode_sse

ANTHROPIC_STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant",'
    b'"content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":25,"output_tokens":1}}}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hi \xe4\xbd\xa0\xe5\xa5\xbd"}}\n\n'
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n\n'
)


def parse_all(chunks, **kw):
    parser = SSEParser(**kw)
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events + parser.flush()


def test_parses_anthropic_stream_with_event_names():
    events = parse_all([ANTHROPIC_STREAM])
    assert [e.event for e in events] == ["message_start", "ping", "content_block_delta", "message_stop"]
    assert "Hi 你好" in events[2].data


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_newline_style(newline):
    stream = ANTHROPIC_STREAM.replace(b"\n", newline)
    assert parse_all([stream]) == parse_all([ANTHROPIC_STREAM])


def test_split_at_every_byte_offset_gives_the_same_events():
    expected = parse_all([ANTHROPIC_STREAM])
    for stream in (ANTHROPIC_STREAM, ANTHROPIC_STREAM.replace(b"\n", b"\r\n")):
        for cut in range(len(stream) + 1):
            assert parse_all([stream[:cut], stream[cut:]]) == expected, cut


def test_byte_by_byte_feeding():
    stream = ANTHROPIC_STREAM.replace(b"\n", b"\r\n")
    assert parse_all([stream[i : i + 1] for i in range(len(stream))]) == parse_all([ANTHROPIC_STREAM])


def test_three_way_splits_around_crlf():
    stream = b"data: a\r\n\r\ndata: b\r\n\r\n"
    expected = [SSEEvent(None, "a"), SSEEvent(None, "b")]
    for i in range(len(stream)):
        for j in range(i, len(stream)):
            assert parse_all([stream[:i], stream[i:j], stream[j:]]) == expected


def test_multi_line_data_comments_and_unknown_fields():
    stream = b": keep-alive\nid: 7\nretry: 100\ndata: line1\ndata:line2\ndata\nfoo: bar\n\n"
    assert parse_all([stream]) == [SSEEvent(None, "line1\nline2\n")]


def test_garbage_lines_are_ignored_and_do_not_break_later_events():
    stream = b'<html>502 Bad Gateway</html>\n\x00\xff\xfe garbage\n\ndata: {"ok":1}\n\n'
    assert parse_all([stream]) == [SSEEvent(None, '{"ok":1}')]


def test_event_without_data_is_not_dispatched_and_event_name_resets():
    assert parse_all([b"event: ping\n\ndata: x\n\n"]) == [SSEEvent(None, "x")]


def test_openai_done_and_bom():
    events = parse_all([b"\xef\xbb", b'\xbfdata: {"a":1}\n\n', OPENAI_DONE])
    assert events == [SSEEvent(None, '{"a":1}'), SSEEvent(None, "[DONE]")]


def test_flush_returns_unterminated_last_event():
    parser = SSEParser()
    assert parser.feed(b"data: partial") == []
    assert parser.flush() == [SSEEvent(None, "partial")]
    assert parser.flush() == []


def test_utf8_split_inside_a_character():
    data = "data: 你好\n\n".encode()
    for cut in range(len(data)):
        assert parse_all([data[:cut], data[cut:]]) == [SSEEvent(None, "你好")]


def test_oversized_event_raises_sse_error_whether_in_one_line_or_many():
    parser = SSEParser(max_event_bytes=1000)
    with pytest.raises(SSEError):
        parser.feed(b"data: " + b"x" * 2000)
    parser = SSEParser(max_event_bytes=1000)
    with pytest.raises(SSEError):
        for _ in range(100):
            parser.feed(b"data: " + b"y" * 50 + b"\n")
    # many small complete events are fine
    parser = SSEParser(max_event_bytes=1000)
    for _ in range(100):
        assert parser.feed(b"data: " + b"z" * 50 + b"\n\n") == [SSEEvent(None, "z" * 50)]


def test_large_event_in_small_chunks_is_linear_enough():
    parser = SSEParser()
    payload = b"data: " + b"a" * 2_000_000 + b"\n\n"
    events = []
    for i in range(0, len(payload), 1024):
        events.extend(parser.feed(payload[i : i + 1024]))
    assert events == [SSEEvent(None, "a" * 2_000_000)]


def test_encode_sse_shapes():
    assert encode_sse({"type": "ping"}, "ping") == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert encode_sse("[DONE]") == OPENAI_DONE
    assert encode_sse(b"a\nb") == b"data: a\ndata: b\n\n"
    assert encode_sse({"t": "é"}) == 'data: {"t":"é"}\n\n'.encode()


def test_encode_then_parse_round_trip():
    items = [({"a": [1, 2]}, "x"), ("multi\nline\r\ntext", None), ("", None), ("[DONE]", None)]
    wire = b"".join(encode_sse(d, e) for d, e in items)
    events = parse_all([wire])
    assert [e.event for e in events] == ["x", None, None, None]
    assert events[1].data == "multi\nline\ntext"
    assert events[2].data == ""
