"""asciicast v2 transcripts: a writer with a size cap and timed flushes, a reader, plain text, a player.

Bytes that are not valid UTF-8 are kept as surrogate escapes (JSON `\\udcXX`), so `replay` writes back
exactly the bytes the session printed; standard players show them as replacement characters.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from kdebug.sessions.files import open_private

DEFAULT_CAP = 64 * 1024 * 1024
MARKER_RESERVE = 256  # room kept below the cap for the truncation marker line
COALESCE_SECONDS = 0.005  # output chunks closer than this share one event (timing kept to 5 ms)
COALESCE_BYTES = 1024 * 1024
BACKLOG_WAKE = 4 * 1024 * 1024  # queued output that wakes the writer thread early
BACKLOG_MAX = 64 * 1024 * 1024  # queued output the terminal's thread writes itself (bounds memory)
TRUNCATION_MARKER = "kdebug: transcript truncated: size cap of {cap} bytes reached, later output not stored"


@dataclass(frozen=True)
class TranscriptSummary:
    size: int
    sha256: str
    truncated: bool
    dropped_bytes: int


def _decoder() -> codecs.IncrementalDecoder:
    # Incremental: a multibyte character split across two chunks is held back, never split.
    return codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")


class TranscriptWriter:
    """Appends asciicast v2 lines to a new file; thread-safe.

    The terminal's hot path only queues (time, code, bytes); a background thread encodes, hashes and
    writes the queue every `flush_interval` (and fsyncs), so recording costs the stream almost nothing.
    A backlog over BACKLOG_MAX bytes is written inline, which bounds memory.
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int = 80,
        height: int = 24,
        env: dict[str, str] | None = None,
        title: str = "",
        timestamp: int = 0,
        cap: int = DEFAULT_CAP,
        clock: Callable[[], float] = time.monotonic,
        flush_interval: float = 0.5,
        heartbeat_interval: float = 30.0,
    ):
        self.path = path
        self._header: dict[str, Any] = {
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": timestamp,
        }
        if env:
            self._header["env"] = env
        if title:
            self._header["title"] = title
        self._cap = cap
        self._clock = clock
        self._start = clock()
        # 0600 whatever the umask: a transcript holds whatever was typed and printed
        fd = open_private(path, os.O_WRONLY | os.O_EXCL)
        self._file: IO[bytes] = os.fdopen(fd, "wb", buffering=256 * 1024)
        self._sha = hashlib.sha256()
        self._size = 0
        self._header_written = False
        self._shown_size = (width, height)  # the size a player has at this point of the transcript
        self._truncated = False
        self._dropped = 0
        self._closed = False
        self._queue: list[tuple[float, str, Any]] = []
        self._queued_bytes = 0
        self._lock = threading.Lock()  # guards the queue
        self._write_lock = threading.Lock()  # one writer of the file at a time, in queue order
        self._out_decoder = _decoder()
        self._in_decoder = _decoder()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_loop,
            args=(flush_interval, heartbeat_interval),
            name="kdebug-transcript",
            daemon=True,
        )
        self._flusher.start()

    # -- events (hot path: queue only) ----------------------------------------------------------------
    def output(self, data: bytes) -> None:
        self._enqueue("o", data, len(data))

    def input(self, data: bytes) -> None:
        self._enqueue("i", data, len(data))

    def resize(self, cols: int, rows: int) -> None:
        self._enqueue("r", (cols, rows), 0)

    def _enqueue(self, code: str, payload: Any, size: int) -> None:
        moment = self._clock() - self._start
        with self._lock:
            if self._closed:
                return
            self._queue.append((moment, code, payload))
            self._queued_bytes += size
            backlog = self._queued_bytes
        if backlog >= BACKLOG_MAX:
            self._drain()
        elif backlog >= BACKLOG_WAKE:
            self._wake.set()

    def close(self) -> TranscriptSummary:
        """Write what is queued and any held partial character, stop the flusher, fsync; idempotent."""
        with self._lock:
            already = self._closed
            self._closed = True
        self._stop.set()
        self._wake.set()
        if self._flusher is not threading.current_thread():
            self._flusher.join(timeout=30)
        with self._write_lock:
            if not already:
                self._write_queue()
                tail = self._out_decoder.decode(b"", final=True)
                if tail:
                    self._write_event(self._clock() - self._start, "o", tail, 0)
                self._write_header_once()
            if not self._file.closed:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
        return TranscriptSummary(self._size, self._sha.hexdigest(), self._truncated, self._dropped)

    @property
    def truncated(self) -> bool:
        return self._truncated

    # -- the writing side -----------------------------------------------------------------------------
    def _drain(self) -> None:
        with self._write_lock:
            if not self._file.closed:
                self._write_queue()
                self._file.flush()

    def _write_queue(self) -> None:
        """Callers hold _write_lock: encode and write everything queued so far, in order."""
        with self._lock:
            batch, self._queue, self._queued_bytes = self._queue, [], 0
        for moment, code, payload in _coalesce_output(batch):
            if code == "r":
                cols, rows = payload
                if not self._header_written:
                    self._header["width"], self._header["height"] = cols, rows
                elif (cols, rows) != self._shown_size:  # an "r" event only for a change of size
                    self._write_event(moment, "r", f"{cols}x{rows}", 0)
                self._shown_size = (cols, rows)
                continue
            # Incremental: a multibyte character split across two chunks is held back, never split.
            decoder = self._out_decoder if code == "o" else self._in_decoder
            text = decoder.decode(payload)
            if text:
                self._write_event(moment, code, text, len(payload) if code == "o" else 0)

    def _write_event(self, moment: float, code: str, text: str, raw_len: int) -> None:
        self._write_header_once()
        if self._truncated:
            self._dropped += raw_len
            return
        line = f"[{moment:.6f}, {json.dumps(code)}, {json.dumps(text)}]\n".encode()
        if self._size + len(line) > self._cap - MARKER_RESERVE:
            self._truncated = True
            self._dropped += raw_len
            marker = TRUNCATION_MARKER.format(cap=self._cap)
            self._write(f'[{moment:.6f}, "m", {json.dumps(marker)}]\n'.encode())
            return
        self._write(line)

    def _write_header_once(self) -> None:
        if not self._header_written:
            self._header_written = True
            self._write((json.dumps(self._header) + "\n").encode())

    def _write(self, line: bytes) -> None:
        self._file.write(line)
        self._sha.update(line)
        self._size += len(line)

    def _flush_loop(self, interval: float, heartbeat_interval: float) -> None:
        last_beat = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._write_lock:
                if self._file.closed:
                    return
                written = self._size
                self._write_queue()
                if self._size != written:
                    self._file.flush()
                    # Durable too (a closed laptop), not only visible to other processes.
                    os.fsync(self._file.fileno())
            if time.monotonic() - last_beat >= heartbeat_interval:
                # The file's mtime is the session's heartbeat for readers on other hosts.
                os.utime(self.path)
                last_beat = time.monotonic()


def _coalesce_output(batch: list[tuple[float, str, Any]]) -> Iterator[tuple[float, str, Any]]:
    """Join output chunks that arrived within COALESCE_SECONDS of a group's first (fewer, larger events)."""
    group: list[bytes] = []
    group_start = 0.0
    group_size = 0
    for moment, code, payload in batch:
        if code == "o" and group and moment - group_start <= COALESCE_SECONDS and group_size < COALESCE_BYTES:
            group.append(payload)
            group_size += len(payload)
            continue
        if group:
            yield group_start, "o", b"".join(group)
            group = []
        if code == "o":
            group, group_start, group_size = [payload], moment, len(payload)
        else:
            yield moment, code, payload
    if group:
        yield group_start, "o", b"".join(group)


class NullTranscript:
    """The same interface, storing nothing (for `--no-record` and the overhead benchmark)."""

    truncated = False

    def output(self, data: bytes) -> None:
        pass

    def input(self, data: bytes) -> None:
        pass

    def resize(self, cols: int, rows: int) -> None:
        pass

    def close(self) -> TranscriptSummary:
        return TranscriptSummary(0, hashlib.sha256(b"").hexdigest(), False, 0)


# -- reading ------------------------------------------------------------------------------------------
class CastFormatError(ValueError):
    pass


@dataclass(frozen=True)
class CastEvent:
    time: float
    code: str
    data: str


def iter_cast(lines: Iterable[str]) -> Iterator[dict[str, Any] | CastEvent]:
    """Yield the header dict, then each event; an empty file yields nothing (the session printed nothing).

    A last line without its newline that does not parse is the tail a killed recorder left half
    written: it is dropped, not an error.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            if not line.endswith("\n"):
                return
            raise CastFormatError(f"line {number} is not JSON") from None
        if number == 1:
            if not isinstance(item, dict) or item.get("version") != 2:
                raise CastFormatError("line 1 is not an asciicast v2 header")
            yield item
            continue
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], int | float)):
            raise CastFormatError(f"line {number} is not an asciicast event")
        yield CastEvent(float(item[0]), str(item[1]), str(item[2]))


def read_cast(path: Path) -> tuple[dict[str, Any], list[CastEvent]]:
    with open(path, encoding="utf-8") as handle:
        items = list(iter_cast(handle))
    if not items:
        return {}, []
    header = items[0]
    assert isinstance(header, dict)
    return header, [item for item in items[1:] if isinstance(item, CastEvent)]


def output_bytes(events: Iterable[CastEvent]) -> bytes:
    """Exactly the bytes the session printed (the `o` events)."""
    return "".join(event.data for event in events if event.code == "o").encode("utf-8", "surrogateescape")


# -- plain text ---------------------------------------------------------------------------------------
_CONTROL_SEQUENCE = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (titles, hyperlinks)
    r"|\x1b[PX^_].*?(?:\x1b\\|$)"  # DCS, SOS, PM, APC strings
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI (colours, cursor moves, erase)
    r"|\x1b[ -/]*[0-~]"  # other escapes (charset selection, keypad modes)
    r"|\x9b[0-?]*[ -/]*[@-~]",  # 8-bit CSI
    re.DOTALL,
)
_OTHER_CONTROLS = re.compile(r"[\x00-\x07\x0b\x0c\x0e-\x1f\x7f]")


def render_plain(data: bytes) -> str:
    """Terminal output as plain text: control sequences removed, carriage returns and backspaces applied."""
    text = _CONTROL_SEQUENCE.sub("", data.decode("utf-8", "replace"))
    lines = [_apply_line_edits(line) for line in text.split("\n")]
    return "\n".join(lines)


def _apply_line_edits(line: str) -> str:
    if "\r" not in line and "\b" not in line:
        return _OTHER_CONTROLS.sub("", line)
    cells: list[str] = []
    column = 0
    for char in line:
        if char == "\r":
            column = 0
        elif char == "\b":
            column = max(0, column - 1)
        elif _OTHER_CONTROLS.match(char):
            continue
        elif column < len(cells):
            cells[column] = char
            column += 1
        else:
            cells.append(char)
            column += 1
    return "".join(cells)


# -- playing ------------------------------------------------------------------------------------------
def play(
    events: Iterable[CastEvent],
    write: Callable[[bytes], None],
    sleep: Callable[[float], None] = time.sleep,
    *,
    speed: float = 1.0,
    max_idle: float | None = None,
) -> int:
    """Write each output event after its recorded delay (divided by speed, idle capped); returns bytes."""
    previous = 0.0
    written = 0
    for event in events:
        if event.code != "o":
            continue
        delay = max(0.0, event.time - previous)
        previous = event.time
        if max_idle is not None:
            delay = min(delay, max_idle)
        if delay > 0:
            sleep(delay / speed)
        chunk = event.data.encode("utf-8", "surrogateescape")
        write(chunk)
        written += len(chunk)
    return written
