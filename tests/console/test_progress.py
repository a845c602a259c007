"""The attach progress renderer on a real pseudo-terminal: lines, and a rich spinner loaded off the main
thread that never outlives a line or the banner."""

from __future__ import annotations

import io
import os
import select

from kdebug.console.progress import ProgressRenderer


def _pty_stream():
    master, slave = os.openpty()
    return master, os.fdopen(slave, "w", encoding="utf-8")


def _read_all(master: int) -> str:
    out = b""
    while select.select([master], [], [], 0.2)[0]:
        out += os.read(master, 65536)
    return out.decode(errors="replace")


def test_the_spinner_shows_the_latest_state_once_rich_is_loaded():
    master, stream = _pty_stream()
    renderer = ProgressRenderer(stream)
    renderer("waiting", container="kdebug-abcde", state="ContainerCreating")
    assert renderer.loader is not None
    renderer.loader.join(10)
    assert renderer.status is not None
    renderer.stop()
    assert "waiting for kdebug-abcde: ContainerCreating" in _read_all(master)
    stream.close()
    os.close(master)


def test_a_line_stops_the_spinner_and_it_does_not_come_back():
    master, stream = _pty_stream()
    renderer = ProgressRenderer(stream)
    renderer("waiting", container="kdebug-abcde", state="ContainerCreating")
    renderer("image", image="busybox:1.36.1", reason="default")  # a line: the spinner pauses
    assert renderer.loader is not None
    renderer.loader.join(10)
    assert renderer.status is None
    assert _read_all(master).rstrip().endswith("kdebug: debug image busybox:1.36.1: default")
    stream.close()
    os.close(master)


def test_no_spinner_and_no_rich_thread_when_stderr_is_not_a_terminal():
    stream = io.StringIO()
    renderer = ProgressRenderer(stream)
    renderer("waiting", container="kdebug-abcde", state="ContainerCreating")
    renderer(
        "banner",
        namespace="demo",
        pod="web",
        target="app",
        container="kdebug-abcde",
        image="busybox:1.36.1",
        reason="default",
        reused=False,
        target_root="/proc/1/root",
    )
    assert renderer.loader is None
    assert stream.getvalue().splitlines() == [
        "kdebug: pod demo/web, target container app",
        "kdebug: debug container kdebug-abcde, image busybox:1.36.1",
        "kdebug: the target's filesystem is at /proc/1/root",
    ]
