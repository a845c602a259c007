"""Run kdebug's idle-guarded shell the way a container runtime starts a tty container, and report what
it left behind. Run as a program (it makes itself a child subreaper, which a test process must not):

    python probe.py SPEC_JSON  ->  {"exit": N, "orphans": [...], "output": "..."}

SPEC: {"script": str, "shell": [...], "ctty": bool, "env": {...}, "steps": [["send", text] |
["expect", regex] | ["ctrl-c"]]}. Orphans are processes re-parented to the probe after the guarded
shell's main process exited: in a pod they would be re-parented to the target's PID 1.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import select
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
STEP_TIMEOUT_S = 15.0


def main() -> None:
    spec = json.loads(sys.argv[1])
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    master, slave = os.openpty()
    env = {"PS1": "$ ", "TERM": "dumb", **spec["env"]}
    argv = [spec["shell"][0], "-c", spec["script"], "kdebug-idle-guard", *spec["shell"]]
    child = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        preexec_fn=_take_controlling_tty if spec["ctty"] else None,
    )
    os.close(slave)
    output = b""
    for step in spec["steps"]:
        if step[0] == "send":
            os.write(master, step[1].encode() + b"\n")
        elif step[0] == "ctrl-c":
            os.write(master, b"\x03")
        elif step[0] == "expect":
            output = _read_until(master, output, re.compile(step[1].encode()))
    code = child.wait(timeout=STEP_TIMEOUT_S * 2)
    output = _drain(master, output)
    print(json.dumps({"exit": code, "orphans": _adopted(), "output": output.decode(errors="replace")}))


def _take_controlling_tty() -> None:
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _read_until(fd: int, seen: bytes, pattern: re.Pattern[bytes]) -> bytes:
    start = len(seen)
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not pattern.search(seen, start):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {pattern.pattern!r} in {seen[start:]!r}")
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                raise SystemExit(f"the shell ended before {pattern.pattern!r}: {seen[start:]!r}") from None
    return seen


def _drain(fd: int, seen: bytes) -> bytes:
    while select.select([fd], [], [], 0.1)[0]:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        seen += data
    return seen


def _adopted() -> list[str]:
    """Processes whose parent is now this probe (all its own children have been waited for)."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if int(rest[1]) == me:
            found.append(f"{entry} {name} {rest[0]}")
    return found


if __name__ == "__main__":
    main()
