"""The emulator's container runtime: every container is a real local process.

What a kubelet + containerd would do, scaled down: image "pulls" against the ImageTable, container
state transitions reported through `ContainerEvents`, real processes (ptys when `tty: true`), a
per-container log, restarts by restartPolicy, and the attach/exec/log endpoints over the websocket
channel protocol (see streams.py). Processes never change user. Each one leads its own session, and
everything in that session is killed when the container stops, so nothing the runtime started outlives
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import struct
import subprocess
import termios
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from kdebug_emulator import status as st
from kdebug_emulator.childproc import child_dies_with_parent
from kdebug_emulator.images import DEFAULT_PATH, ImageInfo, ImageTable, image_id_for, normalize_ref
from kdebug_emulator.runtimes.base import ContainerEvents, Runtime
from kdebug_emulator.streams import (
    CLOSE,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    V5,
    ChannelSession,
    StreamOptions,
    StreamRequestError,
    attach_exit_status,
    exec_exit_status,
    internal_error_status,
    negotiate,
    parse_resize,
    parse_stream_options,
    query_bool,
    status_response,
)

log = logging.getLogger(__name__)

DEFAULT_SIZE = (80, 24)  # (width, height) until the client sends a resize
DRAIN_SECONDS = 1.0  # after exit, how long to wait for the last output before closing the streams
LOG_LIMIT_BYTES = 8 * 1024 * 1024  # per container; oldest lines are dropped beyond it
FOLLOW_CHECK_SECONDS = 5.0  # a quiet `logs -f` checks this often whether its client is still there
IDLE_SECONDS = "2147483647"
SHELL_NAMES = frozenset({"sh", "ash", "bash", "dash"})
APPLET_DIRS = frozenset({"", "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/busybox"})

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


# --- what to run (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HostTools:
    """The static BusyBox that stands in for image shells and applets, if the host has one."""

    busybox: str | None
    applets: frozenset[str] = frozenset()


def detect_host_tools(busybox: str = "/bin/busybox") -> HostTools:
    if not os.access(busybox, os.X_OK):
        return HostTools(None)
    listing = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=False).stdout
    return HostTools(busybox, frozenset(listing.split()))


class CommandNotFoundError(Exception):
    """The executable does not exist here; worded as runc words it."""

    def __init__(self, executable: str):
        super().__init__(f'exec: "{executable}": executable file not found in $PATH')
        self.executable = executable


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str


def container_argv(container: Mapping[str, Any], image: ImageInfo) -> list[str]:
    """Kubernetes semantics: command replaces the entrypoint (and drops the image's cmd); args replace cmd."""
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    if command:
        return command + args
    return list(image.entrypoint) + (args or list(image.cmd))


def map_to_busybox(argv: Sequence[str], tools: HostTools) -> list[str]:
    """Image shells and BusyBox applets run on the host's static BusyBox (or /bin/sh for shells)."""
    if not argv:
        return []
    executable, rest = argv[0], list(argv[1:])
    directory, _, name = executable.rpartition("/")
    if name in SHELL_NAMES:
        return [tools.busybox, "sh", *rest] if tools.busybox else ["/bin/sh", *rest]
    if tools.busybox is None:
        return list(argv)
    if name == "busybox":
        return [tools.busybox, *rest]
    if name in tools.applets and directory in APPLET_DIRS:
        return [tools.busybox, name, *rest]
    return list(argv)


def find_executable(executable: str, search_path: str) -> str | None:
    if "/" in executable:
        return executable if os.path.isfile(executable) and os.access(executable, os.X_OK) else None
    return shutil.which(executable, path=search_path)


def resolve_argv(argv: Sequence[str], search_path: str, tools: HostTools) -> list[str]:
    mapped = map_to_busybox(argv, tools)
    if not mapped:
        raise CommandNotFoundError("")
    found = find_executable(mapped[0], search_path)
    if found is None:
        raise CommandNotFoundError(argv[0])
    return [found, *mapped[1:]]


def idle_argv(tools: HostTools) -> list[str]:
    """The stand-in for an app we cannot run (scratch/distroless): a recognisable, harmless sleeper."""
    if tools.busybox:
        return [tools.busybox, "sleep", IDLE_SECONDS]
    return [shutil.which("sleep") or "/bin/sleep", IDLE_SECONDS]


def home_for(user: str) -> str:
    if user in ("", "0", "root"):
        return "/root"
    return "/home/nonroot" if user.split(":")[0] == "65532" else "/"


def container_env(
    image: ImageInfo, container: Mapping[str, Any], *, hostname: str, tty: bool
) -> dict[str, str]:
    """Image env, then the runtime's own (HOSTNAME, TERM, HOME), then the container's `env` values."""
    env = {"PATH": DEFAULT_PATH, **image.env, "HOSTNAME": hostname}
    if tty:
        env["TERM"] = "xterm"
    env.setdefault("HOME", home_for(image.user))
    for item in container.get("env") or []:
        if "name" in item and "valueFrom" not in item:
            env[str(item["name"])] = str(item.get("value", ""))
    return env


def pull_failure_state(ref: str, pull_policy: str | None) -> list[dict[str, Any]]:
    """The waiting states a kubelet reports, in order, for an image it cannot get."""
    if pull_policy == "Never":
        message = f'Container image "{ref}" is not present with pull policy of Never'
        return [{"waiting": {"reason": "ErrImageNeverPull", "message": message}}]
    full = normalize_ref(ref)
    pull = (
        f'Failed to pull image "{ref}": rpc error: code = NotFound desc = failed to pull and unpack image '
        f'"{full}": failed to resolve reference "{full}": {full}: not found'
    )
    return [
        {"waiting": {"reason": "ErrImagePull", "message": pull}},
        {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{ref}"'}},
    ]


def terminated_state(
    exit_code: int, started: datetime, finished: datetime, container_id: str
) -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": rfc3339(started),
            "finishedAt": rfc3339(finished),
            "containerID": container_id,
        }
    }


def start_error_state(error: str, moment: datetime, container_id: str) -> dict[str, Any]:
    # containerd + runc: a missing executable is exit code 128, reason StartError
    message = (
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
        f"runc create failed: unable to start container process: {error}: unknown"
    )
    return {
        "terminated": {
            "exitCode": 128,
            "reason": "StartError",
            "message": message,
            "startedAt": rfc3339(moment),
            "finishedAt": rfc3339(moment),
            "containerID": container_id,
        }
    }


def restarts(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def exit_code_of(returncode: int) -> int:
    """A signal death reads as 128+N, as container runtimes report it."""
    return 128 - returncode if returncode < 0 else returncode


# --- process sessions ----------------------------------------------------------------------------


def session_members(sid: int) -> list[int]:
    """Live processes whose session id is `sid` (ours are session leaders, so this is their whole tree)."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 3 and fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def signal_session(sid: int, signum: int) -> None:
    if sid <= 1 or sid == os.getsid(0):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, signum)
    for pid in session_members(sid):
        if pid != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)


def _child_takes_terminal() -> None:
    child_dies_with_parent()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_window_size(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


OutputSink = Callable[[int, bytes], None]


class Proc:
    """One started process: its streams, its exit, its session. Output goes to `sink(channel, data)`."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        sink: OutputSink,
        *,
        master: int | None,
        stdin_fd: int | None,
        outputs: dict[int, int],
    ):
        self.process = process
        self.pid = process.pid
        self.sink = sink
        self.master = master
        self.stdin_fd = stdin_fd
        self._open_outputs = dict(outputs)  # fd -> channel
        self._fds = set(outputs) | ({stdin_fd} if stdin_fd is not None else set())
        self._output_done = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if stdin_fd is not None:
            os.set_blocking(stdin_fd, False)  # a child that never reads must not block the event loop
        for fd, channel in outputs.items():
            os.set_blocking(fd, False)
            self._loop.add_reader(fd, self._on_readable, fd, channel)
        if not outputs:
            self._output_done.set()
        self.exited: asyncio.Future[int] = asyncio.ensure_future(self._wait_and_clean_up())

    @classmethod
    async def spawn(cls, launch: Launch, sink: OutputSink, *, tty: bool, stdin: bool) -> Proc:
        if tty:
            return await cls._spawn_on_pty(launch, sink)
        return await cls._spawn_on_pipes(launch, sink, stdin=stdin)

    @classmethod
    async def _spawn_on_pty(cls, launch: Launch, sink: OutputSink) -> Proc:
        master, slave = os.openpty()
        set_window_size(master, *DEFAULT_SIZE)
        try:
            process = await asyncio.create_subprocess_exec(
                *launch.argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=launch.env,
                cwd=launch.cwd,
                start_new_session=True,
                preexec_fn=_child_takes_terminal,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # only the child holds it now, so the master reads EOF when the child is gone
        return cls(process, sink, master=master, stdin_fd=master, outputs={master: STDOUT})

    @classmethod
    async def _spawn_on_pipes(cls, launch: Launch, sink: OutputSink, *, stdin: bool) -> Proc:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe() if stdin else (subprocess.DEVNULL, None)
        try:
            process = await asyncio.create_subprocess_exec(
                *launch.argv,
                stdin=in_r,
                stdout=out_w,
                stderr=err_w,
                env=launch.env,
                cwd=launch.cwd,
                start_new_session=True,
                preexec_fn=child_dies_with_parent,
            )
        except BaseException:
            for fd in (out_r, err_r, in_w):
                if fd is not None:
                    os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w, in_r if stdin else None):
                if fd is not None:
                    os.close(fd)
        return cls(process, sink, master=None, stdin_fd=in_w, outputs={out_r: STDOUT, err_r: STDERR})

    def _on_readable(self, fd: int, channel: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: a pty whose other side is closed
            data = b""
        if data:
            self.sink(channel, data)
            return
        self._loop.remove_reader(fd)
        self._open_outputs.pop(fd, None)
        if not self._open_outputs:
            self._output_done.set()

    async def _wait_and_clean_up(self) -> int:
        returncode = await self.process.wait()
        signal_session(self.pid, signal.SIGKILL)  # whatever the main process left behind dies with it
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._output_done.wait(), DRAIN_SECONDS)
        self._close_fds()
        return exit_code_of(returncode)

    def _close_fds(self) -> None:
        for fd in list(self._open_outputs):
            self._loop.remove_reader(fd)
        self._open_outputs.clear()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
        self.stdin_fd = None
        self.master = None

    @property
    def running(self) -> bool:
        return not self.exited.done()

    async def write_stdin(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self.stdin_fd is not None:
            fd = self.stdin_fd
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                await self._writable(fd)
            except OSError:
                return  # the reader is gone (EPIPE) or the fd was closed meanwhile

    async def _writable(self, fd: int) -> None:
        ready = self._loop.create_future()

        def on_writable() -> None:
            self._loop.remove_writer(fd)
            if not ready.done():
                ready.set_result(None)

        self._loop.add_writer(fd, on_writable)
        try:
            await ready
        finally:
            self._loop.remove_writer(fd)

    def close_stdin(self) -> None:
        """EOF on stdin: close the pipe, or send the terminal's EOF character on a pty."""
        if self.stdin_fd is None:
            return
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.write(self.master, b"\x04")
            return
        fd, self.stdin_fd = self.stdin_fd, None
        self._fds.discard(fd)
        with contextlib.suppress(OSError):
            os.close(fd)

    def resize(self, width: int, height: int) -> None:
        """The kernel sends SIGWINCH to the terminal's foreground process group."""
        if self.master is not None:
            with contextlib.suppress(OSError):
                set_window_size(self.master, width, height)

    async def terminate(self, grace: float) -> None:
        """SIGTERM to the whole session, SIGKILL after `grace` seconds, then reap."""
        if self.running:
            signal_session(self.pid, signal.SIGTERM)
            done, _ = await asyncio.wait({self.exited}, timeout=grace)
            if not done:
                signal_session(self.pid, signal.SIGKILL)
        await asyncio.shield(self.exited)


# --- logs ----------------------------------------------------------------------------------------


class ContainerLog:
    """Everything a container instance printed, as lines with the time each line started."""

    def __init__(self, clock: Clock, limit: int = LOG_LIMIT_BYTES):
        self._clock = clock
        self._limit = limit
        self._lines: list[tuple[str, bytearray]] = []
        self._dropped = 0  # lines dropped from the front; cursors are absolute line numbers
        self._size = 0
        self._changed = asyncio.Event()
        self.closed = False

    def append(self, data: bytes) -> None:
        stamp = rfc3339_nano(self._clock())
        pieces = data.split(b"\n")
        parts = [p + b"\n" for p in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
        for part in parts:
            if self._lines and not self._lines[-1][1].endswith(b"\n"):
                self._lines[-1][1].extend(part)
            else:
                self._lines.append((stamp, bytearray(part)))
        self._size += len(data)
        self._drop_oldest()
        self._wake()

    def _drop_oldest(self) -> None:
        while self._size > self._limit and len(self._lines) > 1:
            _, line = self._lines.pop(0)
            self._size -= len(line)
            self._dropped += 1

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def start(self, tail_lines: int | None) -> tuple[int, int]:
        """The cursor for all lines, or the last `tail_lines`."""
        first = 0 if tail_lines is None else max(0, len(self._lines) - tail_lines)
        return self._dropped + first, 0

    def read(self, cursor: tuple[int, int], timestamps: bool) -> tuple[bytes, tuple[int, int]]:
        index, offset = cursor
        if index < self._dropped:
            index, offset = self._dropped, 0
        out = bytearray()
        for stamp, line in self._lines[index - self._dropped :]:
            chunk = line[offset:]
            if timestamps and offset == 0 and chunk:
                out += stamp.encode() + b" "
            out += chunk
            if line.endswith(b"\n"):
                index, offset = index + 1, 0
            else:
                offset = len(line)
        return bytes(out), (index, offset)

    async def changed(self) -> None:
        await self._changed.wait()


# --- containers ----------------------------------------------------------------------------------


@dataclass(eq=False)
class Instance:
    """One run of a container's main process."""

    proc: Proc
    log: ContainerLog
    started_at: datetime
    container_id: str
    subscribers: set[asyncio.Queue[tuple[int, bytes] | None]] = field(default_factory=set)
    exit_code: int | None = None

    def deliver(self, channel: int, data: bytes) -> None:
        self.log.append(data)
        for queue in self.subscribers:
            queue.put_nowait((channel, data))

    def finish(self, exit_code: int) -> None:
        self.exit_code = exit_code
        self.log.close()
        for queue in self.subscribers:
            queue.put_nowait(None)


@dataclass(eq=False)
class Container:
    namespace: str
    pod: str
    pod_uid: str
    name: str
    spec: dict[str, Any]
    ephemeral: bool
    restart_policy: str
    restart_count: int = 0
    image: ImageInfo | None = None
    current: Instance | None = None  # running now
    last: Instance | None = None  # most recent (running or finished)
    previous: Instance | None = None  # the one before `last`
    waiting_reason: str = "ContainerCreating"
    task: asyncio.Task[None] | None = None
    execs: set[Proc] = field(default_factory=set)
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def stopping(self) -> bool:
        return self.stop_requested.is_set()

    def container_id(self) -> str:
        seed = f"{self.namespace}/{self.pod}/{self.pod_uid}/{self.name}/{self.restart_count}"
        return "containerd://" + hashlib.sha256(seed.encode()).hexdigest()


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("container task failed", exc_info=task.exception())


def _query_lists(request: web.Request) -> dict[str, list[str]]:
    return {key: request.query.getall(key) for key in request.query}


def container_not_found(name: str) -> dict[str, Any]:
    # the kubelet's refusal for a container that is not running, as kubectl shows it:
    # `error: Internal error occurred: unable to upgrade connection: container not found ("x")`
    return st.internal_error(f'unable to upgrade connection: container not found ("{name}")')


def log_waiting_error(container: str, pod: str, reason: str) -> dict[str, Any]:
    """The kubelet's refusal to serve logs of a container that never started."""
    detail = {"ErrImagePull": "image can't be pulled", "ImagePullBackOff": "trying and failing to pull image"}
    return st.bad_request(
        f'container "{container}" in pod "{pod}" is waiting to start: {detail.get(reason, reason)}'
    )


async def forward_to_client(
    session: ChannelSession,
    queue: asyncio.Queue[tuple[int, bytes] | None],
    options: StreamOptions,
    final_status: Callable[[], dict[str, Any]],
) -> None:
    """Process -> client: the streams the client asked for, then the final Status (both runtimes).

    With a tty there is one stream: anything a runtime reports as stderr goes out as stdout.
    """
    while True:
        item = await queue.get()
        if item is None:
            await session.finish(final_status())
            return
        channel, data = item
        if (channel == STDOUT and options.stdout) or (channel == STDERR and (options.stderr or options.tty)):
            await session.send(STDOUT if options.tty else channel, data)


async def read_client_frames(session: ChannelSession, proc: Proc, options: StreamOptions) -> None:
    """Client -> process: stdin, resizes, and v5's close of stdin (shared by both runtimes)."""
    async for channel, payload in session.frames():
        if channel == STDIN and options.stdin:
            await proc.write_stdin(payload)
        elif channel == RESIZE:
            size = parse_resize(payload)
            if size is not None:
                proc.resize(*size)
        elif channel == CLOSE and session.protocol == V5 and payload[:1] == bytes([STDIN]) and options.stdin:
            proc.close_stdin()


class ProcessRuntime(Runtime):
    name = "process"

    def __init__(
        self,
        events: ContainerEvents,
        workdir: Path,
        images: ImageTable,
        *,
        create_delay: float | None = 0.05,
        restart_backoff: float = 10.0,
        kill_grace: float = 2.0,
        clock: Clock = utc_now,
        tools: HostTools | None = None,
        attach_exit_codes: bool = False,
    ):
        self.events = events
        self.workdir = Path(workdir)
        self.images = images
        self.create_delay = create_delay
        self.restart_backoff = restart_backoff
        self.kill_grace = kill_grace
        self.clock = clock
        self.tools = tools if tools is not None else detect_host_tools()
        # False (default, as containerd does): attach always ends with Success on channel 3; clients read
        # the exit code from the container's terminated state. True: a kubelet-style NonZeroExitCode, for
        # tests of clients that also honour the status channel.
        self.attach_exit_codes = attach_exit_codes
        self._pods: dict[tuple[str, str], dict[str, Container]] = {}

    # --- lifecycle ---

    async def start_pod(self, pod: dict[str, Any]) -> None:
        spec = pod.get("spec") or {}
        for container_spec in spec.get("containers") or []:
            self._start(pod, container_spec, ephemeral=False)

    async def start_ephemeral(self, pod: dict[str, Any], container: dict[str, Any]) -> None:
        self._start(pod, container, ephemeral=True)

    def _start(self, pod: dict[str, Any], spec: dict[str, Any], *, ephemeral: bool) -> None:
        meta = pod.get("metadata") or {}
        namespace, pod_name = meta.get("namespace", "default"), meta["name"]
        containers = self._pods.setdefault((namespace, pod_name), {})
        if spec["name"] in containers:
            return  # already started: the kubelet acts on each container once
        policy = "Never" if ephemeral else (pod.get("spec") or {}).get("restartPolicy") or "Always"
        container = Container(
            namespace, pod_name, meta.get("uid", ""), spec["name"], dict(spec), ephemeral, policy
        )
        containers[container.name] = container
        self._report(container, {"waiting": {"reason": "ContainerCreating"}})
        container.task = asyncio.create_task(self._run_container(container))
        container.task.add_done_callback(_log_crash)

    def _report(self, container: Container, state: dict[str, Any]) -> None:
        if "waiting" in state:
            container.waiting_reason = state["waiting"]["reason"]
        running = "running" in state
        try:
            self.events.container_state(
                container.namespace,
                container.pod,
                container.name,
                state,
                ephemeral=container.ephemeral,
                ready=running and not container.ephemeral,
                image_id=image_id_for(container.image) if container.image else None,
                restart_count=container.restart_count,
            )
        except Exception:  # a failing listener must not take the container down with it
            log.exception("container_state listener failed for %s/%s", container.pod, container.name)

    async def _pause(self, container: Container, seconds: float | None) -> None:
        """Sleep, but wake up at once when the container is being stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(container.stop_requested.wait(), seconds)

    async def _run_container(self, container: Container) -> None:
        ref = str(container.spec.get("image") or "")
        image = self.images.lookup(ref)
        if image is None:
            await self._report_pull_failure(container, ref)
            return
        container.image = image
        await self._pause(container, self.create_delay)
        backoff = self.restart_backoff
        while not container.stopping:
            exit_code = await self._run_instance(container, image)
            if container.stopping or container.ephemeral or not restarts(container.restart_policy, exit_code):
                return
            message = (
                f"back-off {backoff:g}s restarting failed container={container.name} "
                f"pod={container.pod}_{container.namespace}({container.pod_uid})"
            )
            self._report(container, {"waiting": {"reason": "CrashLoopBackOff", "message": message}})
            await self._pause(container, backoff)
            backoff = min(backoff * 2, self.restart_backoff * 30)
            container.restart_count += 1

    async def _report_pull_failure(self, container: Container, ref: str) -> None:
        for state in pull_failure_state(ref, container.spec.get("imagePullPolicy")):
            await self._pause(container, self.create_delay)
            if container.stopping:
                return
            self._report(container, state)

    async def _run_instance(self, container: Container, image: ImageInfo) -> int:
        container_id = container.container_id()
        tty = bool(container.spec.get("tty"))
        try:
            launch = self._container_launch(container, image)
            instance = await self._spawn_instance(container, launch, container_id, tty=tty)
        except (CommandNotFoundError, OSError) as error:
            reason = (
                str(error) if isinstance(error, CommandNotFoundError) else f"exec: {error.strerror or error}"
            )
            self._report(container, start_error_state(reason, self.clock(), container_id))
            return 128
        if container.stopping:
            await instance.proc.terminate(self.kill_grace)
        else:
            self._report(container, {"running": {"startedAt": rfc3339(instance.started_at)}})
        exit_code = await asyncio.shield(instance.proc.exited)
        container.current = None
        self._report(container, terminated_state(exit_code, instance.started_at, self.clock(), container_id))
        instance.finish(exit_code)
        return exit_code

    async def _spawn_instance(
        self, container: Container, launch: Launch, container_id: str, *, tty: bool
    ) -> Instance:
        log_buffer = ContainerLog(self.clock)
        holder: list[Instance] = []

        def sink(channel: int, data: bytes) -> None:
            holder[0].deliver(channel, data) if holder else log_buffer.append(data)

        proc = await Proc.spawn(launch, sink, tty=tty, stdin=bool(container.spec.get("stdin")))
        instance = Instance(proc, log_buffer, self.clock(), container_id)
        holder.append(instance)
        container.previous, container.last, container.current = container.last, instance, instance
        return instance

    def _container_launch(self, container: Container, image: ImageInfo) -> Launch:
        spec = container.spec
        env = container_env(image, spec, hostname=container.pod, tty=bool(spec.get("tty")))
        cwd = self._working_dir(container, image)
        argv = container_argv(spec, image)
        target = self._target_pid(container)
        if target is not None:  # no shared pid namespace here: tell the debugger where its target is
            env["KDEBUG_TARGET_PID"] = str(target)
        from_image = not spec.get("command")
        if from_image and (image.shell is None or not argv):
            return Launch(idle_argv(self.tools), {**env, "KDEBUG_STAND_IN": " ".join(argv)}, cwd)
        try:
            return Launch(resolve_argv(argv, env["PATH"], self.tools), env, cwd)
        except CommandNotFoundError:
            if from_image:  # the image's own app (e.g. a JVM) is not on this machine
                return Launch(idle_argv(self.tools), {**env, "KDEBUG_STAND_IN": " ".join(argv)}, cwd)
            raise

    def _target_pid(self, container: Container) -> int | None:
        name = container.spec.get("targetContainerName")
        if not container.ephemeral or not name:
            return None
        target = self._pods.get((container.namespace, container.pod), {}).get(name)
        return target.current.proc.pid if target is not None and target.current is not None else None

    def _working_dir(self, container: Container, image: ImageInfo) -> str:
        wanted = container.spec.get("workingDir") or image.working_dir
        if wanted and os.path.isdir(wanted):
            return wanted
        private = self.workdir / container.namespace / container.pod / container.name
        private.mkdir(parents=True, exist_ok=True)
        return str(private)

    async def stop_pod(self, namespace: str, name: str) -> None:
        containers = self._pods.pop((namespace, name), {})
        await asyncio.gather(*(self._stop_container(c) for c in containers.values()))

    async def _stop_container(self, container: Container) -> None:
        container.stop_requested.set()
        stops: list[Awaitable[None]] = [proc.terminate(self.kill_grace) for proc in list(container.execs)]
        if container.current is not None:
            stops.append(container.current.proc.terminate(self.kill_grace))
        await asyncio.gather(*stops)
        if container.task is not None:
            with contextlib.suppress(Exception):  # already logged by _log_crash
                await container.task

    async def shutdown(self) -> None:
        await asyncio.gather(*(self.stop_pod(ns, name) for ns, name in list(self._pods)))

    def pids(self) -> list[int]:
        """Every process the runtime currently runs (main processes and execs), for checks and tests."""
        found = []
        for containers in self._pods.values():
            for container in containers.values():
                if container.current is not None:
                    found.append(container.current.proc.pid)
                found.extend(proc.pid for proc in container.execs)
        return found

    # --- streams ---

    def _container(self, pod: dict[str, Any], name: str) -> Container | None:
        meta = pod.get("metadata") or {}
        return self._pods.get((meta.get("namespace", "default"), meta.get("name", "")), {}).get(name)

    def _running(self, pod: dict[str, Any], name: str) -> tuple[Container, Instance]:
        container = self._container(pod, name)
        if container is None or container.current is None or not container.current.proc.running:
            raise StreamRequestError(container_not_found(name))
        return container, container.current

    async def handle_attach(
        self, request: web.Request, pod: dict[str, Any], container: str
    ) -> web.StreamResponse:
        # Order as the kubelet checks: stream options (400), then the container (500), then the upgrade.
        try:
            options = parse_stream_options(_query_lists(request), container, exec_=False)
            target, instance = self._running(pod, container)
            protocol = negotiate(request)
        except StreamRequestError as refusal:
            return status_response(refusal.body)
        session = await ChannelSession.open(request, protocol)
        await self._attach(session, target, instance, options)
        return session.ws

    async def _attach(
        self, session: ChannelSession, container: Container, instance: Instance, options: StreamOptions
    ) -> None:
        queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        instance.subscribers.add(queue)
        if instance.exit_code is not None:
            queue.put_nowait(None)

        def final_status() -> dict[str, Any]:
            return attach_exit_status((instance.exit_code or 0) if self.attach_exit_codes else 0)

        forward = asyncio.create_task(forward_to_client(session, queue, options, final_status))
        try:
            await read_client_frames(session, instance.proc, options)
        finally:
            instance.subscribers.discard(queue)
            if not forward.done():
                forward.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forward
            # Ephemeral-container semantics: a client leaving does not close stdin, unless stdinOnce.
            if options.stdin and container.spec.get("stdinOnce"):
                instance.proc.close_stdin()

    async def handle_exec(
        self, request: web.Request, pod: dict[str, Any], container: str
    ) -> web.StreamResponse:
        try:
            options = parse_stream_options(_query_lists(request), container, exec_=True)
            target, _instance = self._running(pod, container)
            protocol = negotiate(request)
        except StreamRequestError as refusal:
            return status_response(refusal.body)
        session = await ChannelSession.open(request, protocol)
        await self._exec(session, target, options)
        return session.ws

    async def _exec(self, session: ChannelSession, container: Container, options: StreamOptions) -> None:
        assert container.image is not None  # a running container has a resolved image
        env = container_env(container.image, container.spec, hostname=container.pod, tty=options.tty)
        target = self._target_pid(container)
        if target is not None:  # exec'd commands see the container's environment, this included
            env["KDEBUG_TARGET_PID"] = str(target)
        queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        try:
            argv = resolve_argv(options.command, env["PATH"], self.tools)
            launch = Launch(argv, env, self._working_dir(container, container.image))
            proc = await Proc.spawn(
                launch, lambda ch, data: queue.put_nowait((ch, data)), tty=options.tty, stdin=options.stdin
            )
        except (CommandNotFoundError, OSError) as error:
            await session.finish(internal_error_status(exec_failure_message(options.command, error)))
            return
        container.execs.add(proc)
        proc.exited.add_done_callback(lambda _: queue.put_nowait(None))
        forward = asyncio.create_task(
            forward_to_client(
                session, queue, options, lambda: exec_exit_status(proc.exited.result(), options.command)
            )
        )
        try:
            await read_client_frames(session, proc, options)
        finally:
            if proc.running:  # the client went away: an exec'd process ends with its session
                await proc.terminate(self.kill_grace)
            container.execs.discard(proc)
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(forward, DRAIN_SECONDS)

    async def handle_log(
        self, request: web.Request, pod: dict[str, Any], container: str
    ) -> web.StreamResponse:
        query = _query_lists(request)
        try:
            follow = query_bool(query.get("follow", []))
            timestamps = query_bool(query.get("timestamps", []))
            tail_lines = _tail_lines(query.get("tailLines", []))
            instance = self._log_instance(pod, container, previous=query_bool(query.get("previous", [])))
        except StreamRequestError as refusal:
            return status_response(refusal.body)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        cursor = instance.log.start(tail_lines)
        try:
            while True:
                data, cursor = instance.log.read(cursor, timestamps)
                if data:
                    await response.write(data)
                if not follow or instance.log.closed or _client_gone(request):
                    break
                with contextlib.suppress(TimeoutError):  # wake up now and then to notice a gone client
                    await asyncio.wait_for(instance.log.changed(), FOLLOW_CHECK_SECONDS)
            await response.write_eof()
        except ConnectionError:
            pass  # the client stopped reading
        return response

    def _log_instance(self, pod: dict[str, Any], name: str, *, previous: bool) -> Instance:
        pod_name = (pod.get("metadata") or {}).get("name", "")
        container = self._container(pod, name)
        if previous:
            if container is None or container.previous is None:
                raise StreamRequestError(
                    st.bad_request(f'previous terminated container "{name}" in pod "{pod_name}" not found')
                )
            return container.previous
        if container is None or container.last is None:
            reason = container.waiting_reason if container is not None else "ContainerCreating"
            raise StreamRequestError(log_waiting_error(name, pod_name, reason))
        return container.last


def _client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


def _tail_lines(values: Sequence[str]) -> int | None:
    if not values:
        return None
    try:
        tail = int(values[0])
    except ValueError:
        raise StreamRequestError(st.bad_request(f'invalid value for tailLines: "{values[0]}"')) from None
    if tail < 0:
        raise StreamRequestError(
            st.bad_request("tailLines: Invalid value: must be greater than or equal to 0")
        )
    return tail


def exec_failure_message(command: Sequence[str], error: Exception) -> str:
    """containerd's words when the exec'd binary cannot start (reported on channel 3 after the upgrade)."""
    reason = (
        str(error)
        if isinstance(error, CommandNotFoundError)
        else f"exec: {getattr(error, 'strerror', error)}"
    )
    return (
        "error executing command in container: failed to exec in container: failed to start exec: "
        f"OCI runtime exec failed: exec failed: unable to start container process: {reason}: unknown"
    )
