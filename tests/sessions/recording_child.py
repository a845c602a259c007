"""A real kdebug process that records sessions, for crash and concurrency tests (run as a script).

recording_child.py hold    -> starts a session, prints output, says "ready", waits to be signalled
recording_child.py many N  -> records N complete sessions as fast as it can
"""

from __future__ import annotations

import signal
import sys

from kdebug.config import load_config
from kdebug.sessions.recorder import open_recorder


def hold() -> int:
    try:
        with open_recorder(load_config(), reason="crash-test", flush_interval=0.1) as rec:
            rec.started({"namespace": "demo", "pod": "web", "container": "app"})
            rec.output(b"before the end\r\n")
            sys.stdout.write(f"ready {rec.session_id}\n")
            sys.stdout.flush()
            while True:
                signal.pause()
    except KeyboardInterrupt:
        return 130


def many(count: int, worker: str) -> int:
    for index in range(count):
        rec = open_recorder(load_config())
        rec.started({"namespace": "load", "pod": f"pod-{worker}", "container": "app"})
        rec.update({"ephemeral_container": f"kdebug-{index:05d}"})
        rec.output(f"worker {worker} session {index}\n".encode())
        rec.finished("ok", 0, None)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        sys.exit(hold())
    sys.exit(many(int(sys.argv[2]), sys.argv[3]))
