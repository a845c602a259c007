"""Talking to a started debug container: an interactive attach (tty), or its log followed with stdin
fed over a separate attach; and the exit code afterwards, asked from the pod when the stream had none."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from kdebug.debug import spec
from kdebug.debug.record import Recorder
from kdebug.debug.request import LocalStreams, SessionPlan
from kdebug.errors import KdebugError, UnreachableError, WaitTimeoutError
from kdebug.kube import paths
from kdebug.kube.api import FrameLike, KubeApi, WebSocketLike
from kdebug.kube.channels import SUBPROTOCOLS
from kdebug.lazy import lazy_module
from kdebug.models import ResolvedTarget

if TYPE_CHECKING:
    import socket

    from kdebug.kube.streaming import StreamResult

streaming = lazy_module("kdebug.kube.streaming")  # the websocket loop: following a log does not need it

COMMAND_RUN_LIMIT_S = 365 * 86400.0  # --timeout bounds the start; a running command may take its time
EXIT_REPORT_WAIT_S = 5.0  # after attach ends, how long the terminated state may take to appear
AFTER_LOSS_TIMEOUT = (5.0, 5.0)  # connect, read: asking the pod after a stream ended without a status

# wait(timeout_s, until_terminated) -> (pod, state): the session's watch of its container
Wait = Callable[[float, bool], tuple[dict, spec.StartupState]]


@dataclass
class Streamer:
    """One started debug container `name` in `resolved`'s pod, and the local side to connect it to."""

    client: KubeApi
    resolved: ResolvedTarget
    name: str
    local: LocalStreams
    recorder: Recorder
    wait: Wait
    interrupted: Callable[[str], BaseException]
    seen_pod: Callable[[dict], None]
    record_input: bool = False

    def stream(self, state: spec.StartupState, plan: SessionPlan) -> int:
        if state.phase == "terminated":
            return self.finish_terminated(state)
        if plan.tty:
            return self.interactive()
        return self.non_interactive(plan)

    def attach_socket(self, *, stdin: bool, stdout: bool, tty: bool) -> Any:
        query = [
            ("container", self.name),
            ("stdin", _flag(stdin)),
            ("stdout", _flag(stdout)),
            ("stderr", _flag(stdout and not tty)),
            ("tty", _flag(tty)),
        ]
        path = paths.pod_path(self.resolved.namespace, self.resolved.pod_name, "attach")
        return self.client.websocket(path, query, SUBPROTOCOLS)

    def interactive(self) -> int:
        try:
            ws = self.attach_socket(stdin=True, stdout=True, tty=True)
        except KdebugError:
            # a short COMMAND may end between "running" and the attach: show its log instead
            pod = self.client.get(paths.pod_path(self.resolved.namespace, self.resolved.pod_name))
            state = spec.container_state(pod, self.name)
            if state.phase != "terminated":
                raise
            return self.finish_terminated(state)
        if self.record_input:
            ws = _InputTap(ws, self.recorder.input)
        target = streaming.StreamTarget(
            stdin_fd=self.local.stdin_fd,
            stdout=self.local.stdout,
            stderr=self.local.stdout,
            tty=True,
            on_output=self.recorder.output,
            on_resize=self.recorder.resize,
        )
        result = streaming.run_stream(ws, target)
        if result.status is not None and result.status.exit_code:
            return result.status.exit_code
        # containerd ends every attach with Success: the real exit code is in the terminated state
        return self.exit_code_after_stream(result)

    def exit_code_after_stream(self, result: StreamResult) -> int:
        """No exit code on the status channel: ask the pod; a running shell means the link broke."""
        resolved, name = self.resolved, self.name
        lost = f"connection to the cluster at {self.client.server} lost during the session"
        reattach = f"`kdebug attach {resolved.pod_name} -n {resolved.namespace}`"
        try:
            # short timeouts: after a dropped connection the server may be gone without a FIN
            pod = self.client.request(
                "GET", paths.pod_path(resolved.namespace, resolved.pod_name), timeout=AFTER_LOSS_TIMEOUT
            )
        except KdebugError:
            raise UnreachableError(lost, hint=f"{name} may still run; reattach with {reattach}") from None
        self.seen_pod(pod)
        state = spec.container_state(pod, name)
        if state.phase != "terminated" and result.status is not None and result.status.exit_code == 0:
            # the process ended; give the kubelet a moment to report its terminated state
            with contextlib.suppress(WaitTimeoutError):
                _, state = self.wait(EXIT_REPORT_WAIT_S, True)
            if state.phase != "terminated":
                return 0
        if state.phase == "terminated":
            return state.exit_code if state.exit_code is not None else 0
        if result.status is not None:
            raise KdebugError(f"attach to {name} ended: {result.status.message}")
        raise UnreachableError(
            lost,
            hint=f"the shell in {name} keeps running until it exits or idles out "
            f"(--idle-timeout); reattach with {reattach}",
        )

    def non_interactive(self, plan: SessionPlan) -> int:
        """Output from the log (never lost, even for a command that ends before attach); stdin via attach."""
        logs = LogFollower(self.client, self.resolved, self.name, self.local.stdout, self.recorder.output)
        logs.start()
        try:
            if plan.attach:
                self.feed_stdin()
            _, state = self.wait(COMMAND_RUN_LIMIT_S, True)
            logs.join()
        except KeyboardInterrupt:
            raise self.interrupted(
                f"interrupted; debug container {self.name} keeps running until its command ends"
            ) from None
        if logs.error is not None:
            raise logs.error
        return state.exit_code if state.exit_code is not None else 0

    def feed_stdin(self) -> None:
        local = self.local
        try:
            ws = self.attach_socket(stdin=True, stdout=False, tty=False)
        except KdebugError:
            return  # the command already ended: it did not need its input
        # a terminal on stdin (stdout redirected) is read line by line; nothing to read means EOF at once
        readable = local.stdin_fd is not None and (local.stdin_has_data or local.stdin_is_tty)
        empty = None if readable else _empty_fd()
        stdin_fd = local.stdin_fd if empty is None else empty
        try:
            streaming.run_stream(ws, streaming.StreamTarget(stdin_fd=stdin_fd, stdout=None, stderr=None))
        finally:
            if empty is not None:
                os.close(empty)

    def finish_terminated(self, state: spec.StartupState) -> int:
        """The command ended before attach: print its whole log and return its exit code."""
        logs = LogFollower(
            self.client, self.resolved, self.name, self.local.stdout, self.recorder.output, follow=False
        )
        logs.run()
        if logs.error is not None:
            raise logs.error
        return state.exit_code if state.exit_code is not None else 0


class _InputTap:
    """The attach websocket, with stdin frames (channel 0) also going to the recorder (--record-input)."""

    def __init__(self, ws: WebSocketLike, on_input: Callable[[bytes], None]):
        self._ws = ws
        self._on_input = on_input

    @property
    def sock(self) -> socket.socket | None:
        return self._ws.sock

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    def send_binary(self, payload: bytes) -> int:
        if payload[:1] == b"\x00" and len(payload) > 1:
            self._on_input(bytes(payload[1:]))
        return self._ws.send_binary(payload)

    def recv_data_frame(self, control_frame: bool = False) -> tuple[int, FrameLike]:
        return self._ws.recv_data_frame(control_frame)

    def ping(self, payload: str | bytes = "") -> None:
        self._ws.ping(payload)

    def close(self, status: int = 1000, reason: str | bytes = b"", timeout: float | None = 3) -> None:
        self._ws.close(status, reason, timeout)

    def abort(self) -> None:
        self._ws.abort()

    def shutdown(self) -> None:
        self._ws.shutdown()


class LogFollower(threading.Thread):
    """Copies `pods/NAME/log?container=X&follow=true` to stdout until the container ends."""

    def __init__(
        self,
        client: KubeApi,
        resolved: ResolvedTarget,
        name: str,
        out: IO[bytes],
        on_output: Callable[[bytes], None],
        follow: bool = True,
    ):
        super().__init__(name="kdebug-logs", daemon=True)
        self.client, self.resolved, self.name = client, resolved, name
        self.out, self.on_output, self.follow = out, on_output, follow
        self.error: KdebugError | None = None

    def run(self) -> None:
        path = paths.pod_path(self.resolved.namespace, self.resolved.pod_name, "log")
        query = {"container": self.name, "follow": "true" if self.follow else None}
        try:
            for chunk in self.client.stream_bytes(path, query):
                with contextlib.suppress(OSError, ValueError):
                    self.out.write(chunk)
                    self.out.flush()
                self.on_output(chunk)
        except KdebugError as exc:
            self.error = exc


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _empty_fd() -> int:
    """A read end that is immediately at EOF: closes the remote stdin right away."""
    read_end, write_end = os.pipe()
    os.close(write_end)
    return read_end
