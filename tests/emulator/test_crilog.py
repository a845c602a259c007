"""CRI log files (podman's k8s-file format) parsed and rendered as the kubelet serves pods/NAME/log."""

from __future__ import annotations

import pytest

from kdebug_emulator.crilog import (
    LogRecord,
    kubelet_timestamp,
    last_records,
    parse_record,
    render,
    render_log,
    split_records,
)

T1 = "2026-11-27T09:24:50.057083467+00:00"
T2 = "2026-11-27T09:24:50.721300256+00:00"


def line(stamp: str, stream: str, tag: str, message: str) -> bytes:
    return f"{stamp} {stream} {tag} {message}\n".encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b"%s stdout F hello" % T1.encode(), LogRecord(T1, "stdout", False, b"hello"), id="full"),
        pytest.param(b"%s stderr P part" % T1.encode(), LogRecord(T1, "stderr", True, b"part"), id="partial"),
        pytest.param(b"%s stdout F " % T1.encode(), LogRecord(T1, "stdout", False, b""), id="empty line"),
        pytest.param(
            b"%s stdout F a  b " % T1.encode(), LogRecord(T1, "stdout", False, b"a  b "), id="spaces kept"
        ),
        pytest.param(
            b"%s stdout P:x more" % T1.encode(), LogRecord(T1, "stdout", True, b"more"), id="extra tag fields"
        ),
        pytest.param(b"%s stdout F" % T1.encode(), None, id="no space after the tag"),
        pytest.param(b"%s stdin F x" % T1.encode(), None, id="unknown stream"),
        pytest.param(b"yesterday stdout F x", None, id="not a timestamp"),
        pytest.param(b"", None, id="empty"),
    ],
)
def test_parse_record(raw: bytes, expected: LogRecord | None) -> None:
    assert parse_record(raw) == expected


@pytest.mark.parametrize(
    ("data", "final", "messages", "rest"),
    [
        pytest.param(line(T1, "stdout", "F", "a") + line(T2, "stdout", "F", "b"), False, [b"a", b"b"], b"",
                     id="complete lines"),
        pytest.param(line(T1, "stdout", "F", "a") + b"2026-11-27T09:24", False, [b"a"], b"2026-11-27T09:24",
                     id="incomplete last line kept"),
        pytest.param(line(T1, "stdout", "F", "a") + f"{T2} stdout F b".encode(), True, [b"a", b"b"], b"",
                     id="final: incomplete last line parsed"),
        pytest.param(b"garbage\n" + line(T1, "stdout", "F", "a"), False, [b"a"], b"", id="bad line skipped"),
    ],
)  # fmt: skip
def test_split_records(data: bytes, final: bool, messages: list[bytes], rest: bytes) -> None:
    records, left = split_records(data, final=final)
    assert ([r.message for r in records], left) == (messages, rest)


def test_split_records_across_reads_loses_nothing() -> None:
    data = b"".join(line(T1, "stdout", "F", str(n)) for n in range(50))
    pending, messages = b"", []
    for start in range(0, len(data), 7):  # arbitrary read boundaries, mid-record
        records, pending = split_records(pending + data[start : start + 7])
        messages += [r.message for r in records]
    assert (messages, pending) == ([str(n).encode() for n in range(50)], b"")


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        pytest.param(T1, "2026-11-27T09:24:50.057083467Z", id="zero offset prints Z"),
        pytest.param("2026-11-27T09:24:50.5Z", "2026-11-27T09:24:50.500000000Z", id="fraction padded to 9"),
        pytest.param("2026-11-27T09:24:50Z", "2026-11-27T09:24:50.000000000Z", id="no fraction"),
        pytest.param("2026-11-27T10:24:50.000000001+01:00", "2026-11-27T10:24:50.000000001+01:00",
                     id="other offset kept"),
    ],
)  # fmt: skip
def test_kubelet_timestamp(stamp: str, expected: str) -> None:
    assert kubelet_timestamp(stamp) == expected


@pytest.mark.parametrize(
    ("records", "timestamps", "expected"),
    [
        pytest.param([LogRecord(T1, "stdout", False, b"one"), LogRecord(T2, "stderr", False, b"two")], False,
                     b"one\ntwo\n", id="both streams, full lines"),
        pytest.param([LogRecord(T1, "stdout", True, b"lo"), LogRecord(T2, "stdout", False, b"ng")], False,
                     b"long\n", id="partial records joined"),
        pytest.param([LogRecord(T1, "stdout", False, b"one")], True,
                     b"2026-11-27T09:24:50.057083467Z one\n", id="timestamp prefix"),
        pytest.param([LogRecord(T1, "stdout", True, b"lo"), LogRecord(T2, "stdout", False, b"ng")], True,
                     b"2026-11-27T09:24:50.057083467Z lo2026-11-27T09:24:50.721300256Z ng\n",
                     id="timestamp on every record, partial ones too"),
        pytest.param([LogRecord(T1, "stdout", True, b"no newline")], False, b"no newline",
                     id="partial at the end stays open"),
    ],
)  # fmt: skip
def test_render(records: list[LogRecord], timestamps: bool, expected: bytes) -> None:
    assert render(records, timestamps=timestamps) == expected


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        pytest.param(None, [b"0", b"1", b"2"], id="all"),
        pytest.param(2, [b"1", b"2"], id="last two"),
        pytest.param(0, [], id="zero"),
        pytest.param(5, [b"0", b"1", b"2"], id="more than there are"),
    ],
)
def test_last_records(tail: int | None, expected: list[bytes]) -> None:
    records = [LogRecord(T1, "stdout", False, str(n).encode()) for n in range(3)]
    assert [r.message for r in last_records(records, tail)] == expected


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        pytest.param(None, b"a\nb\ncut", id="incomplete last line shown as written"),
        pytest.param(1, b"b\n", id="tail counts complete lines only"),
    ],
)
def test_render_log_of_a_whole_file(tail: int | None, expected: bytes) -> None:
    data = line(T1, "stdout", "F", "a") + line(T2, "stderr", "F", "b") + f"{T2} stdout F cut".encode()
    assert render_log(data, tail_lines=tail, timestamps=False) == expected
