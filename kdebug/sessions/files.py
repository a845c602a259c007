"""Private local files: the session store, its transcripts and sinks are readable by their owner only.

Transcripts hold whatever was typed and printed in a session (a `PASSWORD=` included), so directories
are 0700 and files 0600 whatever the umask. A store or sink left with looser modes by an older kdebug
(or a hand-made one) is tightened; when that is not allowed (another user owns it), a warning says so.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create `path` and its missing parents as 0700 (a mode umask cannot widen); tighten it if it exists."""
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
    tighten(path, DIR_MODE)


def open_private(path: Path, flags: int) -> int:
    """os.open with O_CREAT and mode 0600 (umask only removes bits); an existing file is tightened."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & ~FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except PermissionError:
        warn_loose(path, mode, "kdebug may not change it")
    except BaseException:
        os.close(fd)
        raise
    return fd


def tighten(path: Path, wanted: int) -> bool:
    """chmod `path` to `wanted` if it grants more; True if it was looser. A missing path is left alone."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if not mode & ~wanted:
        return False
    try:
        path.chmod(wanted)
    except PermissionError:
        warn_loose(path, mode, "kdebug may not change it")
    return True


def warn_loose(path: Path, mode: int, why: str) -> None:
    wanted = DIR_MODE if path.is_dir() else FILE_MODE
    sys.stderr.write(
        f"kdebug: warning: {path} is readable by other users (mode {mode:04o}), {why}: "
        f"chmod {wanted:o} {path}\n"
    )
