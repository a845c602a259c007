"""The process runtime and image table: real processes, real ptys, lifecycle reported like a kubelet.

`RuntimeHarness` runs the runtime on its own event loop thread behind a small aiohttp app that routes
pods/NAME/{attach,exec,log} straight to the runtime's handlers; test_streams.py drives it with real
websocket clients.
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kdebug_emulator.images import DEFAULT_PATH, ImageInfo, ImageTable, digest_for
from kdebug_emulator.runtimes.process import (
    CommandNotFoundError,
    HostTools,
    ProcessRuntime,
    container_argv,
    detect_host_tools,
    map_to_busybox,
    resolve_argv,
    session_members,
)
from tests.fixtures.pods import build_pod, container

TIMEOUT = 15.0
FIXED_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BUSYBOX = "busybox:1.36"


# --- harness ---------------------------------------------------------------------------------------


@dataclass
class Record:
    namespace: str
    pod: str
    container: str
    state: dict[str, Any]
    ephemeral: bool
    ready: bool | None
    image_id: str | None
    restart_count: int | None

    @property
    def kind(self) -> str:
        return next(iter(self.state))

    @property
    def reason(self) -> str:
        """`running`, or the waiting/terminated reason."""
        detail = self.state[self.kind]
        return "running" if self.kind == "running" else str(detail.get("reason"))


class RecordingEvents:
    """A ContainerEvents fake that records every report and lets the test thread wait for one."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._changed = threading.Condition()

    def container_state(
        self,
        namespace: str,
        pod: str,
        container: str,
        state: dict[str, Any],
        *,
        ephemeral: bool = False,
        ready: bool | None = None,
        image_id: str | None = None,
        restart_count: int | None = None,
    ) -> None:
        with self._changed:
            self.records.append(
                Record(namespace, pod, container, state, ephemeral, ready, image_id, restart_count)
            )
            self._changed.notify_all()

    def reasons(self, container: str) -> list[str]:
        with self._changed:
            return [r.reason for r in self.records if r.container == container]

    def wait_for(self, container: str, reason: str, count: int = 1) -> Record:
        """The `count`-th report of `reason` for `container`, waiting up to TIMEOUT for it."""

        def found() -> list[Record]:
            return [r for r in self.records if r.container == container and r.reason == reason]

        with self._changed:
            if not self._changed.wait_for(lambda: len(found()) >= count, TIMEOUT):
                raise AssertionError(f"{container}: no {reason!r} #{count}; saw {self.reasons(container)}")
            return found()[count - 1]


def make_container(name: str, image: str = BUSYBOX, **fields: Any) -> dict:
    return container(name, image, **fields)


def make_pod(name: str = "web", containers: list[dict] | None = None, restart_policy: str = "Always") -> dict:
    return build_pod(
        typed=False,
        name=name,
        uid=f"uid-{name}",
        containers=containers or [make_container("app", "registry.kdebug.test/demo/web:1.0")],
        restart_policy=restart_policy,
    )


class RuntimeHarness:
    """The runtime on a background event loop, served over real HTTP on 127.0.0.1."""

    def __init__(self, workdir: Path, **runtime_options: Any):
        self.events = RecordingEvents()
        self.pods: dict[tuple[str, str], dict] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        options = {"create_delay": 0.01, "kill_grace": 0.5, "clock": lambda: FIXED_TIME, **runtime_options}
        self.runtime: ProcessRuntime = self.call(self._make_runtime(workdir, options))
        self.port: int = self.call(self._serve())

    async def _make_runtime(self, workdir: Path, options: dict[str, Any]) -> ProcessRuntime:
        return ProcessRuntime(self.events, workdir, ImageTable(), **options)

    async def _serve(self) -> int:
        app = web.Application()
        app.router.add_route("*", "/api/v1/namespaces/{ns}/pods/{name}/{sub}", self._route)
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def _route(self, request: web.Request) -> web.StreamResponse:
        pod = self.pods[(request.match_info["ns"], request.match_info["name"])]
        container = request.query.get("container") or pod["spec"]["containers"][0]["name"]
        handler = {
            "attach": self.runtime.handle_attach,
            "exec": self.runtime.handle_exec,
            "log": self.runtime.handle_log,
        }[request.match_info["sub"]]
        return await handler(request, pod, container)

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT)

    def in_loop(self, function: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return function()

        return self.call(run())

    def start_pod(self, pod: dict) -> dict:
        self.pods[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = pod
        self.call(self.runtime.start_pod(pod))
        return pod

    def start_ephemeral(self, pod: dict, container: dict) -> None:
        pod["spec"].setdefault("ephemeralContainers", []).append(container)
        self.call(self.runtime.start_ephemeral(pod, container))

    def pid_of(self, pod: dict, container: str) -> int:
        def main_pid() -> int:
            found = self.runtime._container(pod, container)
            assert found is not None and found.current is not None
            return found.current.proc.pid

        return int(self.in_loop(main_pid))

    def url(self, pod: str, sub: str, query: str, scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/api/v1/namespaces/default/pods/{pod}/{sub}?{query}"

    def close(self) -> None:
        try:
            self.call(self.runtime.shutdown())
            self.call(self.runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(TIMEOUT)
            self.loop.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[RuntimeHarness]:
    running = RuntimeHarness(tmp_path)
    yield running
    running.close()


def wait_gone(pid: int) -> bool:
    """True once `pid` has exited (a pidfd turns readable), waiting at most TIMEOUT."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], TIMEOUT)
        return bool(readable)
    finally:
        os.close(pidfd)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --- image table ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "user", "shell", "entrypoint"),
    [
        ("busybox", "0", "/bin/sh", []),
        ("busybox:1.36.1", "0", "/bin/sh", []),
        ("docker.io/library/busybox:1.37", "0", "/bin/sh", []),
        ("gcr.io/distroless/static-debian12:latest", "0", None, []),
        ("gcr.io/distroless/static-debian12:nonroot", "65532", None, []),
        ("gcr.io/distroless/base-debian13:debug", "0", "/busybox/sh", ["/busybox/sh"]),
        ("gcr.io/distroless/cc-debian12:debug-nonroot-amd64", "65532", "/busybox/sh", ["/busybox/sh"]),
        ("gcr.io/distroless/nodejs22-debian12:latest", "0", None, ["/nodejs/bin/node"]),
        ("cgr.dev/chainguard/nginx:latest", "65532", None, []),
        ("cgr.dev/chainguard/nginx:latest-dev", "65532", "/bin/sh", ["/bin/sh", "-l"]),
        ("alpine:3.20", "0", "/bin/sh", []),
        ("registry.kdebug.test/demo/web:1.0", "0", None, ["/web"]),
    ],
    ids=lambda value: str(value) if isinstance(value, str) else None,
)
def test_known_image_has_its_config(ref: str, user: str, shell: str | None, entrypoint: list[str]) -> None:
    info = ImageTable().lookup(ref)
    assert info is not None
    assert (info.user, info.shell, info.entrypoint) == (user, shell, entrypoint)


@pytest.mark.parametrize(
    "ref",
    [
        "nginx:1.27",
        "gcr.io/distroless/static-debian11:latest",
        "gcr.io/distroless/static-debian12:weird",
        "cgr.dev/chainguard/nginx:1.27",
        "registry.kdebug.test/demo/web:2.0",
        "",
    ],
    ids=["nginx", "debian11", "unknown-tag", "chainguard-version-tag", "demo-other-tag", "empty"],
)
def test_unknown_image_cannot_be_pulled(ref: str) -> None:
    assert ImageTable().lookup(ref) is None


def test_nonroot_distroless_works_in_home_nonroot() -> None:
    info = ImageTable().lookup("gcr.io/distroless/java21-debian12:nonroot")
    assert info is not None and info.working_dir == "/home/nonroot"


def test_image_with_digest_resolves_by_name_and_keeps_the_digest() -> None:
    digest = "sha256:" + "ab" * 32
    info = ImageTable().lookup(f"gcr.io/distroless/static-debian12:nonroot@{digest}")
    assert info is not None and info.user == "65532" and info.digest == digest


def test_digest_is_the_same_for_the_same_image_under_two_spellings() -> None:
    table = ImageTable()
    short, full = table.lookup("busybox"), table.lookup("docker.io/library/busybox:latest")
    assert short is not None and full is not None
    assert short.digest == full.digest == digest_for("busybox")


def test_added_image_becomes_pullable() -> None:
    table = ImageTable([ImageInfo("example.test/tools:1", ["/bin/sh"], [], "0", {}, "/bin/sh")])
    info = table.lookup("example.test/tools:1")
    assert info is not None and info.entrypoint == ["/bin/sh"]


# --- what a container runs ----------------------------------------------------------------------------

IMAGE = ImageInfo("example.test/app:1", ["/entry"], ["default-arg"], "0", {}, None)


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({}, ["/entry", "default-arg"]),
        ({"args": ["x"]}, ["/entry", "x"]),
        ({"command": ["sh"]}, ["sh"]),
        ({"command": ["sh", "-c"], "args": ["echo hi"]}, ["sh", "-c", "echo hi"]),
    ],
    ids=["image-defaults", "args-replace-cmd", "command-drops-cmd", "command-and-args"],
)
def test_container_argv_follows_kubernetes_semantics(container: dict, expected: list[str]) -> None:
    assert container_argv(container, IMAGE) == expected


TOOLS = HostTools("/bin/busybox", frozenset({"sh", "ash", "ls", "cat", "sleep"}))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/busybox/sh"], ["/bin/busybox", "sh"]),
        (["bash", "-l"], ["/bin/busybox", "sh", "-l"]),
        (["/bin/ash"], ["/bin/busybox", "sh"]),
        (["ls", "/"], ["/bin/busybox", "ls", "/"]),
        (["/busybox/busybox", "cat"], ["/bin/busybox", "cat"]),
        (["/opt/app/cat"], ["/opt/app/cat"]),
        (["python3", "-V"], ["python3", "-V"]),
    ],
    ids=[
        "distroless-debug-shell",
        "bash",
        "ash",
        "applet",
        "busybox-itself",
        "not-an-applet-dir",
        "no-applet",
    ],
)
def test_shells_and_applets_run_on_busybox(argv: list[str], expected: list[str]) -> None:
    assert map_to_busybox(argv, TOOLS) == expected


def test_shell_falls_back_to_bin_sh_without_busybox() -> None:
    assert map_to_busybox(["/busybox/sh", "-c", "true"], HostTools(None)) == ["/bin/sh", "-c", "true"]


def test_missing_executable_is_reported_as_runc_words_it() -> None:
    with pytest.raises(
        CommandNotFoundError, match=r'exec: "no-such-tool": executable file not found in \$PATH'
    ):
        resolve_argv(["no-such-tool"], "/usr/bin:/bin", detect_host_tools())


# --- lifecycle ---------------------------------------------------------------------------------------


def test_container_goes_from_creating_to_running(harness: RuntimeHarness) -> None:
    harness.start_pod(make_pod(containers=[make_container("app", command=["sleep", "1000"])]))
    running = harness.events.wait_for("app", "running")
    assert harness.events.reasons("app") == ["ContainerCreating", "running"]
    assert running.state["running"]["startedAt"] == "2026-01-02T03:04:05Z"
    assert running.ready is True
    assert running.image_id is not None and running.image_id.startswith("docker.io/library/busybox@sha256:")


def test_unknown_image_fails_to_pull_then_backs_off(harness: RuntimeHarness) -> None:
    harness.start_pod(make_pod(containers=[make_container("app", "example.test/nope:1")]))
    back_off = harness.events.wait_for("app", "ImagePullBackOff")
    pull = harness.events.wait_for("app", "ErrImagePull")
    assert harness.events.reasons("app") == ["ContainerCreating", "ErrImagePull", "ImagePullBackOff"]
    assert pull.state["waiting"]["message"].startswith(
        'Failed to pull image "example.test/nope:1": rpc error: code = NotFound'
    )
    assert back_off.state["waiting"]["message"] == 'Back-off pulling image "example.test/nope:1"'


def test_unknown_image_with_pull_policy_never_is_not_pulled(harness: RuntimeHarness) -> None:
    container = make_container("app", "example.test/nope:1", imagePullPolicy="Never")
    harness.start_pod(make_pod(containers=[container]))
    never = harness.events.wait_for("app", "ErrImageNeverPull")
    message = 'Container image "example.test/nope:1" is not present with pull policy of Never'
    assert never.state["waiting"]["message"] == message


@pytest.mark.parametrize(
    ("script", "exit_code", "reason"),
    [("exit 3", 3, "Error"), ("true", 0, "Completed")],
    ids=["exit-3-is-error", "exit-0-is-completed"],
)
def test_exited_process_is_terminated_with_its_code(
    harness: RuntimeHarness, script: str, exit_code: int, reason: str
) -> None:
    harness.start_pod(
        make_pod(containers=[make_container("job", command=["sh", "-c", script])], restart_policy="Never")
    )
    terminated = harness.events.wait_for("job", reason).state["terminated"]
    assert terminated["exitCode"] == exit_code
    assert terminated["containerID"].startswith("containerd://")


def test_missing_command_is_a_start_error(harness: RuntimeHarness) -> None:
    harness.start_pod(
        make_pod(containers=[make_container("app", command=["no-such-tool"])], restart_policy="Never")
    )
    terminated = harness.events.wait_for("app", "StartError").state["terminated"]
    assert terminated["exitCode"] == 128
    assert 'exec: "no-such-tool": executable file not found in $PATH' in terminated["message"]


def test_restart_policy_always_restarts_after_a_back_off(tmp_path: Path) -> None:
    harness = RuntimeHarness(tmp_path, restart_backoff=0.01)
    try:
        harness.start_pod(make_pod(containers=[make_container("app", command=["sh", "-c", "exit 1"])]))
        second_run = harness.events.wait_for("app", "running", count=2)
        assert second_run.restart_count == 1
        assert harness.events.reasons("app")[:5] == [
            "ContainerCreating",
            "running",
            "Error",
            "CrashLoopBackOff",
            "running",
        ]
    finally:
        harness.close()


def test_ephemeral_container_is_never_restarted(harness: RuntimeHarness) -> None:
    pod = harness.start_pod(make_pod())
    harness.start_ephemeral(pod, make_container("debugger", command=["sh", "-c", "exit 1"]))
    harness.events.wait_for("debugger", "Error")
    harness.call(harness.runtime.stop_pod("default", "web"))  # would interrupt a pending restart
    assert harness.events.reasons("debugger") == ["ContainerCreating", "running", "Error"]
    assert all(r.ephemeral for r in harness.events.records if r.container == "debugger")


def test_shell_less_app_runs_an_idle_stand_in(harness: RuntimeHarness) -> None:
    pod = harness.start_pod(make_pod())
    harness.events.wait_for("app", "running")
    pid = harness.pid_of(pod, "app")
    with open(f"/proc/{pid}/environ", "rb") as handle:
        assert b"KDEBUG_STAND_IN=/web" in handle.read().split(b"\0")


def test_container_gets_image_env_and_its_own_env(harness: RuntimeHarness) -> None:
    container = make_container(
        "job",
        command=["sh", "-c", 'echo "$GREETING $HOSTNAME $PATH"'],
        env=[{"name": "GREETING", "value": "hi"}],
    )
    harness.start_pod(make_pod("envpod", [container], restart_policy="Never"))
    harness.events.wait_for("job", "Completed")
    url = harness.url("envpod", "log", "container=job", "http")
    with urllib.request.urlopen(url, timeout=TIMEOUT) as log:
        assert log.read() == f"hi envpod {DEFAULT_PATH}\n".encode()


# --- no strays ---------------------------------------------------------------------------------------


def start_busy_pod(harness: RuntimeHarness) -> tuple[dict, list[int]]:
    """A pod with an idle app, a tty shell, and a shell that left a background child behind."""
    pod = harness.start_pod(
        make_pod(
            containers=[
                make_container("app", "registry.kdebug.test/demo/web:1.0"),
                make_container("shell", command=["sh"], stdin=True, tty=True),
                make_container("forker", command=["sh", "-c", "sleep 1001 & exec sleep 1002"]),
            ]
        )
    )
    for name in ("app", "shell", "forker"):
        harness.events.wait_for(name, "running")
    return pod, [harness.pid_of(pod, name) for name in ("app", "shell", "forker")]


def test_stop_pod_leaves_no_process_behind(harness: RuntimeHarness) -> None:
    _pod, pids = start_busy_pod(harness)
    harness.call(harness.runtime.stop_pod("default", "web"))
    assert [pid for pid in pids if alive(pid)] == []
    assert [session_members(pid) for pid in pids] == [[], [], []]


def test_stop_pod_reports_the_containers_terminated(harness: RuntimeHarness) -> None:
    start_busy_pod(harness)
    harness.call(harness.runtime.stop_pod("default", "web"))
    assert [harness.events.reasons(name)[-1] for name in ("app", "shell", "forker")] == ["Error"] * 3


def test_shutdown_leaves_no_process_behind(harness: RuntimeHarness) -> None:
    _pod, pids = start_busy_pod(harness)
    other = harness.start_pod(make_pod("other", [make_container("app", command=["sleep", "1003"])]))
    harness.events.wait_for("app", "running", count=2)
    pids.append(harness.pid_of(other, "app"))
    harness.call(harness.runtime.shutdown())
    assert [pid for pid in pids if alive(pid) or session_members(pid)] == []
