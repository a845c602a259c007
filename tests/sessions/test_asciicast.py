"""asciicast pieces: plain-text rendering, the player's timing, the reader's refusals."""

from __future__ import annotations

import pytest

from kdebug.sessions.asciicast import CastEvent, CastFormatError, iter_cast, play, render_plain


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        pytest.param(b"\x1b[1;31mred\x1b[0m", "red", id="sgr-colours"),
        pytest.param(b"\x1b]0;window title\x07$ ", "$ ", id="osc-title"),
        pytest.param(b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link", id="osc-hyperlink-st"),
        pytest.param(b"a\r\nb\r\n", "a\nb\n", id="crlf"),
        pytest.param(b"50%\r75%\r100%\n", "100%\n", id="carriage-return-overwrites"),
        pytest.param(b"abc\b\bX\n", "aXc\n", id="backspace"),
        pytest.param(b"\x1b(B\x1b=\x07bell", "bell", id="charset-keypad-bell"),
        pytest.param(b"\x1b[6n\x1b[2J\x1b[H#", "#", id="cursor-query-and-clear"),
        pytest.param(b"caf\xc3\xa9 \xff", "caf\u00e9 \ufffd", id="utf8-and-invalid-byte"),
    ],
)
def test_render_plain(raw, plain):
    assert render_plain(raw) == plain


def test_play_waits_recorded_delays_divided_by_speed():
    events = [CastEvent(0.5, "o", "a"), CastEvent(0.5, "r", "80x24"), CastEvent(2.5, "o", "b")]
    waits: list[float] = []
    chunks: list[bytes] = []
    play(events, chunks.append, waits.append, speed=2.0)
    assert (waits, chunks) == ([0.25, 1.0], [b"a", b"b"])


def test_play_caps_idle_time():
    events = [CastEvent(0.1, "o", "a"), CastEvent(60.1, "o", "b")]
    waits: list[float] = []
    play(events, lambda _chunk: None, waits.append, max_idle=1.5)
    assert waits == [0.1, 1.5]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(['{"version": 1}'], "not an asciicast v2 header", id="v1-header"),
        pytest.param(['{"version": 2}\n', "nope\n"], "line 2 is not JSON", id="garbage-line"),
        pytest.param(['{"version": 2}', '{"o": 1}'], "line 2 is not an asciicast event", id="object-event"),
    ],
)
def test_reader_refuses_broken_files(lines, message):
    with pytest.raises(CastFormatError, match=message):
        list(iter_cast(lines))


def test_reader_drops_a_half_written_last_line():
    lines = ['{"version": 2}\n', '[0.1, "o", "whole"]\n', '[0.2, "o", "cut in the mid']
    assert [item.data for item in list(iter_cast(lines))[1:]] == ["whole"]
