import os
import termios

import pytest

from kdebug.console import terminal


@pytest.fixture
def pty_pair():
    parent, child = os.openpty()
    yield parent, child
    os.close(parent)
    os.close(child)


def lflag(fd):
    return termios.tcgetattr(fd)[3]


def test_raw_mode_turns_off_echo_and_canonical_input(pty_pair):
    _, child = pty_pair
    with terminal.raw_mode(child):
        assert lflag(child) & (termios.ECHO | termios.ICANON | termios.ISIG) == 0


def test_raw_mode_restores_attributes_on_normal_exit(pty_pair):
    _, child = pty_pair
    before = termios.tcgetattr(child)
    with terminal.raw_mode(child):
        pass
    assert termios.tcgetattr(child) == before


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()], ids=["exception", "ctrl-c"])
def test_raw_mode_restores_attributes_when_body_raises(pty_pair, error):
    _, child = pty_pair
    before = termios.tcgetattr(child)
    with pytest.raises(type(error)), terminal.raw_mode(child):
        raise error
    assert termios.tcgetattr(child) == before


def test_terminal_size_reads_the_pty_window(pty_pair):
    import fcntl
    import struct

    _, child = pty_pair
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    assert terminal.terminal_size(child) == (101, 33)


def test_is_terminal_tells_pty_from_pipe(pty_pair):
    _, child = pty_pair
    read_end, write_end = os.pipe()
    try:
        assert terminal.is_terminal(child)
        assert not terminal.is_terminal(read_end)
        assert terminal.stdin_has_data_source(read_end)
        assert not terminal.stdin_has_data_source(child)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_dev_null_is_not_a_data_source():
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        assert not terminal.stdin_has_data_source(fd)
    finally:
        os.close(fd)


def test_on_resize_calls_back_on_sigwinch_and_restores_handler():
    import signal

    calls = []
    before = signal.getsignal(signal.SIGWINCH)
    with terminal.on_resize(lambda: calls.append("resized")):
        signal.raise_signal(signal.SIGWINCH)
    assert calls == ["resized"]
    assert signal.getsignal(signal.SIGWINCH) == before
