"""The emulator's podman runtime: every pod is a podman pod, every container a real podman container.

Same `Runtime` protocol (runtimes/base.py) as `ProcessRuntime`, so the server cannot tell them apart.
What a kubelet does, on podman 4.3 (see docs/podman-runtime.md):

- everything podman stores lives under the runtime's own directory (`--root`, `--runroot`, `--tmpdir`,
  a private containers.conf and registries.conf), so it never touches other containers on the machine;
- a pod is `podman pod create --network none` (its own network namespace holding only loopback);
  containers join it, with the security context mapped flag by flag (`podman_create_args`);
- an ephemeral container with `targetContainerName` joins the target's PID namespace through the
  namespace path `--pid ns:/proc/PID/ns/pid` (podman 4.3 refuses `--pid container:X` inside a pod:
  "generating dependency graph ... not found in input list");
- attach and exec run podman's own client (`podman attach`, `podman exec`) as a child process on a
  pty (tty) or pipes that the runtime owns, reusing the process runtime's `Proc` plumbing; a resize
  sets that pty's size, podman forwards the SIGWINCH to the container's terminal.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import web

from kdebug_emulator import crilog
from kdebug_emulator import status as st
from kdebug_emulator.images import ImageTable, normalize_ref
from kdebug_emulator.podman_images import registries_conf
from kdebug_emulator.runtimes.base import ContainerEvents, Runtime
from kdebug_emulator.runtimes.process import (
    Launch,
    Proc,
    container_not_found,
    forward_to_client,
    log_waiting_error,
    read_client_frames,
    restarts,
)
from kdebug_emulator.streams import (
    ChannelSession,
    StreamOptions,
    StreamRequestError,
    attach_exit_status,
    exec_exit_status,
    negotiate,
    parse_stream_options,
    query_bool,
    status_response,
)

log = logging.getLogger(__name__)

LABEL = "io.kdebug.emulator"
KILL_GRACE_SECONDS = 2
PULL_BACKOFF_SECONDS = 10.0
RESTART_BACKOFF_SECONDS = 10.0
DRAIN_SECONDS = 1.0
LOG_POLL_SECONDS = 0.02  # a follow re-reads the log file this often (an exit wakes it at once)
LOG_READ_BYTES = 65536
# containerd's default capability set (what a kubelet's containers get); podman's own default is smaller
DEFAULT_CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
)
NOFILE_CAP = 1048576
NPROC_CAP = 32768
RUNROOT_MAX_CHARS = 50
CLEANUP_WAIT_SECONDS = 10.0  # podman lowers its own RLIMIT_NPROC hard limit to this; more fails with EPERM


# --- can podman run here? ------------------------------------------------------------------------


def oci_runtime() -> str | None:
    """runc where installed: crun 1.8 refuses hybrid cgroup hierarchies such as this machine's."""
    for name in ("runc", "crun"):
        if shutil.which(name):
            return name
    return None


def podman_usable() -> tuple[bool, str]:
    """(usable, reason) for `--runtime auto`: podman present, root, an OCI runtime, and it answers."""
    if shutil.which("podman") is None:
        return False, "podman is not installed"
    if os.geteuid() != 0:
        return False, "the podman runtime needs root (rootless podman is not supported)"
    runtime = oci_runtime()
    if runtime is None:
        return False, "no OCI runtime (runc or crun) is installed"
    if runtime == "crun" and Path("/sys/fs/cgroup/unified").is_dir():
        return False, "crun cannot run containers on hybrid cgroups here: install runc"
    with tempfile.TemporaryDirectory(prefix="kdebug-podman-probe-") as probe:
        setup = PodmanSetup.create(Path(probe), None)
        try:
            done = subprocess.run(
                setup.argv("info", "--format", "{{.Host.OCIRuntime.Name}}"),
                env=setup.env(),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return False, f"podman does not answer: {error}"
        setup.remove_storage()
    if done.returncode != 0:
        return False, f"podman info failed: {last_error_line(done.stderr)}"
    return True, f"podman {runtime}"


def start_image_registry() -> Any:
    """A local docker-registry holding the test and demo images, for a runtime given no registry.

    Without it, upstream names (gcr.io/distroless/...) would be pulled from the internet."""
    from kdebug_emulator.localregistry import start_registry
    from kdebug_emulator.podman_images import push_podman_images

    registry = start_registry()
    try:
        push_podman_images(registry.host)
    except BaseException:
        registry.stop()
        raise
    return registry


def choose_runtime(requested: str) -> tuple[str, str]:
    """`--runtime auto|podman|process` -> (runtime name, a line saying why), for the emulator's startup."""
    if requested != "auto":
        return requested, f"runtime {requested} (as requested)"
    usable, reason = podman_usable()
    if usable:
        return "podman", f"runtime podman: real containers ({reason})"
    return "process", f"runtime process: local processes, because {reason}"


# --- the runtime's private podman ----------------------------------------------------------------


def ulimits_within_own_limits() -> list[str]:
    """Explicit ulimits no higher than this process may set, else runc fails "error setting rlimits"."""
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], NOFILE_CAP)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], NPROC_CAP)
    return [f"nofile={nofile}:{nofile}", f"nproc={nproc}:{nproc}"]


def containers_conf(ulimits: Sequence[str], capabilities: Sequence[str]) -> str:
    quoted = ", ".join(json.dumps(item) for item in ulimits)
    caps = ", ".join(json.dumps(cap) for cap in capabilities)
    return (
        "[containers]\n"
        f"default_ulimits = [{quoted}]\n"
        f"default_capabilities = [{caps}]\n"
        'log_driver = "k8s-file"\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
    )


@dataclass(frozen=True)
class PodmanSetup:
    """The flags and environment that confine every podman call to one directory."""

    root: Path
    runtime: str
    runroot: Path

    @classmethod
    def create(cls, root: Path, registry_host: str | None) -> PodmanSetup:
        for sub in ("storage", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "containers.conf").write_text(
            containers_conf(ulimits_within_own_limits(), DEFAULT_CAPABILITIES)
        )
        (root / "registries.conf").write_text(registries_conf(registry_host))
        return cls(root, oci_runtime() or "runc", short_runroot(root))

    def argv(self, *args: str) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(self.runroot),
            "--tmpdir",
            str(self.root / "tmp"),
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "--runtime",
            self.runtime,
            *args,
        ]

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CONTAINERS_")}
        env["CONTAINERS_CONF"] = str(self.root / "containers.conf")
        env["CONTAINERS_REGISTRIES_CONF"] = str(self.root / "registries.conf")
        return env

    def run_sync(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
        )

    def remove_everything(self) -> None:
        """Every container and pod in this storage (all of them are the runtime's): the last resort."""
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.run_sync("pod", "rm", "--all", "--force", "--time", "0")
            self.run_sync("rm", "--all", "--force", "--time", "0")

    def remove_storage(self) -> None:
        """Unmount and delete the storage (images too), e.g. after a probe."""
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.run_sync("system", "reset", "--force")
        shutil.rmtree(self.runroot, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


def short_runroot(root: Path) -> Path:
    """podman refuses a runroot longer than 50 characters: use a short private dir in /tmp then."""
    wanted = root / "run"
    if len(str(wanted)) <= RUNROOT_MAX_CHARS:
        wanted.mkdir(parents=True, exist_ok=True)
        return wanted
    short = Path(tempfile.mkdtemp(prefix="kdebug-run-", dir="/tmp"))
    with contextlib.suppress(OSError):  # points the way from the runtime's own directory
        (root / "run").unlink(missing_ok=True)
        (root / "run").symlink_to(short)
    return short


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (conmon and podman processes name the storage root)."""
    found = []
    needle = text.encode()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if needle in Path(f"/proc/{entry.name}/cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


async def wait_until_no_process_mentions(text: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while processes_mentioning(text) and loop.time() < deadline:
        await asyncio.sleep(0.05)  # other processes' exits: there is no event to wait on


def last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else "unknown error"
    return line.removeprefix("Error: ")


# --- pod spec -> podman flags (pure) --------------------------------------------------------------


def merged_security(pod: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, Any]:
    """The container's securityContext over the pod's, for the fields both levels have."""
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    merged = {
        key: pod_sc[key]
        for key in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")
        if key in pod_sc
    }
    merged.update(container.get("securityContext") or {})
    return merged


def user_flag(security: Mapping[str, Any], image_user: str) -> str | None:
    """runAsUser/runAsGroup -> `--user uid[:gid]`; only a group keeps the image's user."""
    uid, gid = security.get("runAsUser"), security.get("runAsGroup")
    if uid is None and gid is None:
        return None
    user = str(uid) if uid is not None else (image_user.split(":")[0] or "0")
    return f"{user}:{gid}" if gid is not None else user


def pod_display(pod: Mapping[str, Any]) -> str:
    """The kubelet's format.Pod: `name_namespace(uid)`."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', 'default')}({meta.get('uid', '')})"


def run_as_non_root_refusal(
    pod: Mapping[str, Any], container: Mapping[str, Any], image_user: str
) -> str | None:
    """The kubelet's verifyRunAsNonRoot: a message for CreateContainerConfigError, or None."""
    security = merged_security(pod, container)
    if not security.get("runAsNonRoot"):
        return None
    where = f'(pod: "{pod_display(pod)}", container: {container.get("name", "")})'
    if security.get("runAsUser") is not None:
        return (
            None
            if int(security["runAsUser"]) != 0
            else f"container's runAsUser breaks non-root policy {where}"
        )
    user = image_user.split(":")[0]
    if user in ("", "root"):
        user = "0"
    if not user.isdigit():
        return (
            f"container has runAsNonRoot and image has non-numeric user ({user}), "
            f"cannot verify user is non-root {where}"
        )
    return f"container has runAsNonRoot and image will run as root {where}" if int(user) == 0 else None


def runs_as_root(security: Mapping[str, Any], image_user: str) -> bool:
    if security.get("runAsUser") is not None:
        return int(security["runAsUser"]) == 0
    user = image_user.split(":")[0]
    return user in ("", "0", "root")


def seccomp_args(security: Mapping[str, Any]) -> list[str]:
    """Unset or Unconfined: no filter (the kubelet's default); RuntimeDefault: podman's default profile."""
    profile = (security.get("seccompProfile") or {}).get("type")
    return [] if profile in ("RuntimeDefault", "Localhost") else ["--security-opt", "seccomp=unconfined"]


def security_args(pod: Mapping[str, Any], container: Mapping[str, Any], image_user: str) -> list[str]:
    security = merged_security(pod, container)
    args: list[str] = []
    user = user_flag(security, image_user)
    if user is not None:
        args += ["--user", user]
    for group in (pod.get("spec") or {}).get("securityContext", {}).get("supplementalGroups") or []:
        args += ["--group-add", str(group)]
    capabilities = security.get("capabilities") or {}
    for cap in capabilities.get("drop") or []:
        args += ["--cap-drop", str(cap)]
    # containerd gives a non-root process no effective capabilities (no ambient set); podman 4.3 would
    # make added ones ambient, hence effective, so they are left out for a non-root user
    if runs_as_root(security, image_user):
        for cap in capabilities.get("add") or []:
            args += ["--cap-add", str(cap)]
    if security.get("privileged"):
        args.append("--privileged")
    if security.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    if security.get("readOnlyRootFilesystem"):
        args += ["--read-only", "--read-only-tmpfs=false"]
    if not security.get("privileged"):
        args += seccomp_args(security)
    return args


def command_args(container: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Kubernetes semantics: command replaces the entrypoint (and the image's cmd); args replace cmd."""
    command = [str(part) for part in container.get("command") or []]
    args = [str(part) for part in container.get("args") or []]
    return (["--entrypoint", json.dumps(command)] if command else []), args


def podman_create_args(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    *,
    name: str,
    podman_pod: str,
    label: str,
    image_user: str,
    target_pid: int | None = None,
    resolv_conf: str | None = None,
) -> list[str]:
    """`podman create` arguments for one container of a pod."""
    args = ["create", "--pod", podman_pod, "--name", name, "--label", f"{LABEL}={label}", "--pull", "never"]
    if resolv_conf is not None:  # the kubelet mounts the pod's resolv.conf into every container
        args += ["--volume", f"{resolv_conf}:/etc/resolv.conf:ro"]
    args += ["--stop-timeout", str(KILL_GRACE_SECONDS)]
    if container.get("stdin"):
        args.append("--interactive")
    if container.get("tty"):
        args.append("--tty")
    for item in container.get("env") or []:
        if "name" in item and "valueFrom" not in item:
            args += ["--env", f"{item['name']}={item.get('value', '')}"]
    if container.get("workingDir"):
        args += ["--workdir", str(container["workingDir"])]
    if target_pid is not None:
        args += ["--pid", f"ns:/proc/{target_pid}/ns/pid"]
    args += security_args(pod, container, image_user)
    entrypoint, arguments = command_args(container)
    return [*args, *entrypoint, str(container["image"]), *arguments]


def cluster_first_resolv_conf(namespace: str) -> str:
    return (
        f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\n"
        "options ndots:5\n"
    )


def pull_policy(container: Mapping[str, Any]) -> str:
    policy = container.get("imagePullPolicy")
    if policy:
        return str(policy)
    ref = normalize_ref(str(container.get("image", "")))
    return "Always" if ref.endswith(":latest") else "IfNotPresent"


def rfc3339_from_podman(moment: str) -> str:
    """podman prints `2026-11-27T06:48:32.123456789Z` or with an offset; the API uses whole seconds, UTC."""
    text = moment.strip()
    head, _, rest = text.partition(".")
    offset = ""
    if rest:
        for sign in ("Z", "+", "-"):
            if sign in rest:
                offset = rest[rest.index(sign) :]
                break
    else:
        head, offset = text[:19], text[19:]
    offset = "+00:00" if offset in ("", "Z") else offset
    try:
        parsed = datetime.fromisoformat(head[:19] + offset)
    except ValueError:
        parsed = datetime.now(UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_path_from_inspect(details: Mapping[str, Any]) -> str:
    """The container's log file: podman 4.3 fills HostConfig.LogConfig.Path (docker's LogPath stays unset)."""
    log_config = (details.get("HostConfig") or {}).get("LogConfig") or {}
    return str(details.get("LogPath") or log_config.get("Path") or "")


def terminated_from_inspect(state: Mapping[str, Any], container_id: str) -> dict[str, Any]:
    exit_code = int(state.get("ExitCode", 0))
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": "OOMKilled" if state.get("OOMKilled") else ("Completed" if exit_code == 0 else "Error"),
        "startedAt": rfc3339_from_podman(str(state.get("StartedAt", ""))),
        "finishedAt": rfc3339_from_podman(str(state.get("FinishedAt", ""))),
        "containerID": container_id,
    }
    if state.get("Error"):
        terminated["message"] = str(state["Error"])
    return {"terminated": terminated}


# --- the runtime ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFacts:
    user: str  # the image config's User ("" = root)
    image_id: str | None  # repo@sha256:..., as a kubelet reports imageID


@dataclass
class PodmanResult:
    returncode: int
    stdout: str
    stderr: str


@dataclass(eq=False)
class Tracked:
    """One container of an emulated pod, as the runtime knows it."""

    namespace: str
    pod: str
    name: str
    spec: dict[str, Any]
    ephemeral: bool
    podman_name: str
    restart_policy: str
    restart_count: int = 0
    running: bool = False
    started: bool = False  # has had a podman container that ran (so it has logs)
    waiting_reason: str = "ContainerCreating"
    container_id: str = ""
    image_id: str | None = None
    pid: int = 0  # of the main process while running, for debuggers joining its PID namespace
    log_path: str = ""  # the k8s-file log (CRI format) of its podman container
    run_ended: asyncio.Event = field(default_factory=asyncio.Event)  # set once the current run stops running
    task: asyncio.Task[None] | None = None
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    clients: set[Proc] = field(default_factory=set)


@dataclass(frozen=True)
class LogOptions:
    follow: bool
    timestamps: bool
    tail_lines: int | None


def _query_lists(request: web.Request) -> dict[str, list[str]]:
    return {key: request.query.getall(key) for key in request.query}


class PodmanRuntime(Runtime):
    name = "podman"

    def __init__(
        self,
        events: ContainerEvents,
        workdir: Path,
        images: ImageTable,
        *,
        create_delay: float | None = 0.05,
        registry_host: str | None = None,
        attach_exit_codes: bool = False,
        pull_backoff: float = PULL_BACKOFF_SECONDS,
        own_registry: bool = True,
        restart_backoff: float = RESTART_BACKOFF_SECONDS,
    ):
        self.events = events
        self.workdir = Path(workdir)
        self.images = images  # unused: podman pulls from registries; kept for the shared contract
        self.create_delay = create_delay
        self.attach_exit_codes = attach_exit_codes
        self.pull_backoff = pull_backoff
        self.restart_backoff = restart_backoff
        self.registry: Any = None  # a registry this runtime started itself (kdebug_emulator.localregistry)
        if registry_host is None and own_registry:
            self.registry = start_image_registry()
            registry_host = self.registry.host
        self.setup = PodmanSetup.create(self.workdir / "podman", registry_host)
        self.instance_label = os.urandom(6).hex()
        self._pods: dict[tuple[str, str], dict[str, Tracked]] = {}
        self._pod_names: dict[tuple[str, str], str] = {}
        self._shut_down = False
        atexit.register(self._cleanup_at_exit)

    # --- podman calls ---

    async def podman(self, *args: str) -> PodmanResult:
        process = await asyncio.create_subprocess_exec(
            *self.setup.argv(*args),
            env=self.setup.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = await process.communicate()
        except asyncio.CancelledError:  # e.g. a `podman wait` of a pod being stopped: leave no child
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        return PodmanResult(
            process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
        )

    async def inspect(self, name: str) -> dict[str, Any] | None:
        result = await self.podman("container", "inspect", name)
        if result.returncode != 0:
            return None
        found = json.loads(result.stdout or "[]")
        return found[0] if found else None

    async def image_facts(self, ref: str) -> ImageFacts | None:
        """User and repo digest of a local image in one call; None when it is not present."""
        result = await self.podman(
            "image", "inspect", "--format", "{{json .User}} {{json .RepoDigests}}", ref
        )
        if result.returncode != 0:
            return None
        user_json, _, digests_json = result.stdout.strip().partition(" ")
        try:
            user, digests = json.loads(user_json) or "", json.loads(digests_json or "[]") or []
        except ValueError:
            return ImageFacts("", None)
        name = normalize_ref(ref).split("@")[0].rsplit(":", 1)[0]
        image_id = next((d for d in digests if d.startswith(name + "@")), digests[0] if digests else None)
        return ImageFacts(str(user), image_id)

    # --- events ---

    def _report(self, container: Tracked, state: dict[str, Any]) -> None:
        if "waiting" in state:
            container.waiting_reason = state["waiting"]["reason"]
        running = "running" in state
        container.running = running
        if not running:
            container.run_ended.set()
        elif container.run_ended.is_set():  # a new run: followers of the last one have ended
            container.run_ended = asyncio.Event()
        try:
            self.events.container_state(
                container.namespace,
                container.pod,
                container.name,
                state,
                ephemeral=container.ephemeral,
                ready=running and not container.ephemeral,
                image_id=container.image_id,
                restart_count=container.restart_count,
            )
        except Exception:  # a failing listener must not take the container down with it
            log.exception("container_state listener failed for %s/%s", container.pod, container.name)

    async def _pause(self, container: Tracked, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(container.stop_requested.wait(), seconds)

    # --- lifecycle ---

    @staticmethod
    def _key(pod: Mapping[str, Any]) -> tuple[str, str]:
        meta = pod.get("metadata") or {}
        return meta.get("namespace", "default"), meta.get("name", "")

    def _podman_name(self, pod: Mapping[str, Any], container: str, attempt: int = 0) -> str:
        namespace, name = self._key(pod)
        uid = str((pod.get("metadata") or {}).get("uid", ""))[:8]
        return f"k8s_{container}_{name}_{namespace}_{uid}_{attempt}"

    async def start_pod(self, pod: dict[str, Any]) -> None:
        key = self._key(pod)
        spec = pod.get("spec") or {}
        tracked = {
            c["name"]: Tracked(
                key[0],
                key[1],
                c["name"],
                c,
                False,
                self._podman_name(pod, c["name"]),
                str(spec.get("restartPolicy", "Always")),
            )
            for c in spec.get("containers") or []
        }
        self._pods[key] = tracked
        for container in tracked.values():
            self._report(container, {"waiting": {"reason": "ContainerCreating"}})
        if not await self._create_pod(pod):
            return
        for container in tracked.values():
            container.task = asyncio.create_task(self._run_container(pod, container))

    async def _create_pod(self, pod: dict[str, Any]) -> bool:
        key = self._key(pod)
        namespace, name = key
        uid = str((pod.get("metadata") or {}).get("uid", ""))[:8]
        podman_pod = f"k8s_POD_{name}_{namespace}_{uid}"
        share = "ipc,net,uts,pid" if (pod.get("spec") or {}).get("shareProcessNamespace") else "ipc,net,uts"
        result = await self.podman(
            "pod",
            "create",
            "--name",
            podman_pod,
            "--network",
            "none",
            "--hostname",
            name[:63],
            "--share",
            share,
            "--label",
            f"{LABEL}={self.instance_label}",
        )
        if result.returncode != 0:
            message = f"Failed to create pod sandbox: {last_error_line(result.stderr)}"
            for container in self._pods.get(key, {}).values():
                self._report(container, {"waiting": {"reason": "CreateContainerError", "message": message}})
            return False
        self._pod_names[key] = podman_pod
        return True

    async def start_ephemeral(self, pod: dict[str, Any], container: dict[str, Any]) -> None:
        key = self._key(pod)
        tracked = Tracked(
            key[0],
            key[1],
            container["name"],
            container,
            True,
            self._podman_name(pod, container["name"]),
            "Never",
        )
        self._pods.setdefault(key, {})[container["name"]] = tracked
        self._report(tracked, {"waiting": {"reason": "ContainerCreating"}})
        if key not in self._pod_names:
            return
        tracked.task = asyncio.create_task(self._run_container(pod, tracked))

    async def _run_container(self, pod: dict[str, Any], container: Tracked) -> None:
        try:
            facts = await self._ensure_image(container)
            if facts is None:
                return
            create_args = self._create_args(pod, container, facts.user)
            if create_args is None:
                return
            await self._run_and_restart(container, create_args)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("podman container %s failed", container.podman_name)

    async def _ensure_image(self, container: Tracked) -> ImageFacts | None:
        """Pull as the kubelet would (policy, ErrImagePull then ImagePullBackOff, retries)."""
        ref = str(container.spec.get("image", ""))
        policy = pull_policy(container.spec)
        facts = await self.image_facts(ref)
        if policy == "Never" and facts is None:
            message = f'Container image "{ref}" is not present with pull policy of Never'
            self._report(container, {"waiting": {"reason": "ErrImageNeverPull", "message": message}})
            return None
        if facts is not None and policy != "Always":
            container.image_id = facts.image_id
            return facts
        backoff = self.pull_backoff
        while not container.stop_requested.is_set():
            result = await self.podman("pull", "--quiet", ref)
            facts = await self.image_facts(ref) if result.returncode == 0 else None
            if facts is not None:
                container.image_id = facts.image_id
                return facts
            message = f'Failed to pull image "{ref}": {last_error_line(result.stderr)}'
            self._report(container, {"waiting": {"reason": "ErrImagePull", "message": message}})
            await self._pause(container, min(backoff, 1.0))
            if container.stop_requested.is_set():
                break
            back_off = {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{ref}"'}
            self._report(container, {"waiting": back_off})
            await self._pause(container, backoff)
            backoff = min(backoff * 2, 300.0)
        return None

    def _target_pid(self, container: Tracked) -> int | None:
        target = container.spec.get("targetContainerName")
        if not container.ephemeral or not target:
            return None
        tracked = self._pods.get((container.namespace, container.pod), {}).get(str(target))
        return tracked.pid if tracked is not None and tracked.running and tracked.pid else None

    def _create_args(self, pod: dict[str, Any], container: Tracked, image_user: str) -> list[str] | None:
        """The `podman create` arguments, or None after reporting the kubelet's runAsNonRoot refusal."""
        refusal = run_as_non_root_refusal(pod, container.spec, image_user)
        if refusal is not None:
            self._report(container, {"waiting": {"reason": "CreateContainerConfigError", "message": refusal}})
            return None
        return podman_create_args(
            pod,
            container.spec,
            name=container.podman_name,
            podman_pod=self._pod_names[self._key(pod)],
            label=self.instance_label,
            image_user=image_user,
            target_pid=self._target_pid(container),
            resolv_conf=self._resolv_conf(pod),
        )

    def _resolv_conf(self, pod: dict[str, Any]) -> str:
        """The pod's /etc/resolv.conf as the kubelet writes it for dnsPolicy ClusterFirst.

        Only text: the pod's network namespace has nothing but loopback, so no query leaves it.
        """
        namespace, name = self._key(pod)
        path = self.workdir / "resolv" / namespace / name / "resolv.conf"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(cluster_first_resolv_conf(namespace), encoding="utf-8")
        return str(path)

    async def _run_and_restart(self, container: Tracked, create_args: list[str]) -> None:
        backoff = self.restart_backoff
        while not container.stop_requested.is_set():
            exit_code = await self._run_once(container, create_args)
            if exit_code is None or container.stop_requested.is_set() or container.ephemeral:
                return
            if not restarts(container.restart_policy, exit_code):
                return
            message = (
                f"back-off {backoff:g}s restarting failed container={container.name} "
                f"pod={container.pod}_{container.namespace}"
            )
            self._report(container, {"waiting": {"reason": "CrashLoopBackOff", "message": message}})
            await self._pause(container, backoff)
            backoff = min(backoff * 2, 300.0)
            container.restart_count += 1

    async def _start(self, container: Tracked, create_args: list[str]) -> PodmanResult | None:
        """`podman run --detach` the first time (one podman process: create and start), then `start`.

        None when the container could not even be created (reported as CreateContainerError)."""
        if container.container_id:
            return await self.podman("start", container.podman_name)
        result = await self.podman("run", "--detach", *create_args[1:])
        details = await self.inspect(container.podman_name) if result.returncode != 0 else None
        if result.returncode != 0 and details is None:
            message = last_error_line(result.stderr)
            self._report(container, {"waiting": {"reason": "CreateContainerError", "message": message}})
            return None
        container.container_id = "podman://" + str((details or {}).get("Id") or result.stdout.strip())
        return result

    async def _run_once(self, container: Tracked, create_args: list[str]) -> int | None:
        started = await self._start(container, create_args)
        if started is None:
            return None
        details = await self.inspect(container.podman_name) or {}
        state = details.get("State") or {}
        container.log_path = log_path_from_inspect(details) or container.log_path
        container.started = True
        if started.returncode != 0:  # the runtime could not start it (e.g. the executable is missing)
            terminated = terminated_from_inspect(state, container.container_id)
            terminated["terminated"].update(
                exitCode=int(state.get("ExitCode") or 128),
                reason="StartError",
                message=last_error_line(started.stderr),
            )
            self._report(container, terminated)
            return int(terminated["terminated"]["exitCode"])
        container.pid = int(state.get("Pid") or 0)
        self._report(
            container, {"running": {"startedAt": rfc3339_from_podman(str(state.get("StartedAt", "")))}}
        )
        await self.podman("wait", "--interval", "20ms", container.podman_name)
        container.run_ended.set()  # log followers may end now: conmon drains the output before the exit
        details = await self.inspect(container.podman_name) or {}
        if container.stop_requested.is_set():
            return 0
        terminated = terminated_from_inspect(details.get("State") or {}, container.container_id)
        self._report(container, terminated)
        return int(terminated["terminated"]["exitCode"])

    async def stop_pod(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        containers = self._pods.pop(key, {})
        podman_pod = self._pod_names.pop(key, None)
        for container in containers.values():
            container.stop_requested.set()
            for client in list(container.clients):
                await client.terminate(1.0)
        if podman_pod is not None:
            await self.podman("pod", "rm", "--force", "--time", str(KILL_GRACE_SECONDS), podman_pod)
        tasks = [c.task for c in containers.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def shutdown(self) -> None:
        await asyncio.gather(*(self.stop_pod(ns, name) for ns, name in list(self._pods)))
        # anything left in this storage (e.g. from a pod whose creation was interrupted) is ours
        await self.podman("pod", "rm", "--all", "--force", "--time", "0")
        await self.podman("rm", "--all", "--force", "--time", "0")
        self._shut_down = True
        self._stop_registry()
        if not self.setup.runroot.is_relative_to(self.setup.root):  # the short runroot in /tmp
            # conmon's exit command (`podman container cleanup`) recreates runroot files: wait for it
            await wait_until_no_process_mentions(str(self.setup.root / "storage"), CLEANUP_WAIT_SECONDS)
            shutil.rmtree(self.setup.runroot, ignore_errors=True)

    def _stop_registry(self) -> None:
        if self.registry is not None:
            self.registry.stop()  # only the docker-registry process it started
            self.registry = None

    def _cleanup_at_exit(self) -> None:
        self._stop_registry()
        if not self._shut_down:
            self.setup.remove_everything()
            if not self.setup.runroot.is_relative_to(self.setup.root):
                deadline = time.monotonic() + CLEANUP_WAIT_SECONDS
                while processes_mentioning(str(self.setup.root / "storage")) and time.monotonic() < deadline:
                    time.sleep(0.05)  # conmon's cleanup commands finishing: nothing to wait on
                shutil.rmtree(self.setup.runroot, ignore_errors=True)

    def podman_ids(self) -> dict[str, list[str]]:
        """Containers and pods that exist in the runtime's storage now (for checks and tests)."""
        containers = self.setup.run_sync("ps", "--all", "--quiet", "--no-trunc").stdout.split()
        pods = self.setup.run_sync("pod", "ps", "--quiet", "--no-trunc").stdout.split()
        return {"containers": containers, "pods": pods}

    def podman_name(self, namespace: str, pod: str, container: str) -> str | None:
        tracked = self._pods.get((namespace, pod), {}).get(container)
        return tracked.podman_name if tracked is not None else None

    # --- streams ---

    def _tracked(self, pod: Mapping[str, Any], name: str) -> Tracked | None:
        return self._pods.get(self._key(pod), {}).get(name)

    def _running(self, pod: Mapping[str, Any], name: str) -> Tracked:
        container = self._tracked(pod, name)
        if container is None or not container.running:
            raise StreamRequestError(container_not_found(name))
        return container

    async def handle_attach(
        self, request: web.Request, pod: dict[str, Any], container: str
    ) -> web.StreamResponse:
        try:
            options = parse_stream_options(_query_lists(request), container, exec_=False)
            target = self._running(pod, container)
            protocol = negotiate(request)
        except StreamRequestError as refusal:
            return status_response(refusal.body)
        session = await ChannelSession.open(request, protocol)
        argv = self.setup.argv("attach", "--detach-keys", "", "--sig-proxy=false")
        if not options.stdin:
            argv.append("--no-stdin")
        argv.append(target.podman_name)

        def final(code: int) -> dict[str, Any]:
            return attach_exit_status(code if self.attach_exit_codes else 0)

        await self._bridge(session, target, argv, options, tty=bool(target.spec.get("tty")), final=final)
        return session.ws

    async def handle_exec(
        self, request: web.Request, pod: dict[str, Any], container: str
    ) -> web.StreamResponse:
        try:
            options = parse_stream_options(_query_lists(request), container, exec_=True)
            target = self._running(pod, container)
            protocol = negotiate(request)
        except StreamRequestError as refusal:
            return status_response(refusal.body)
        session = await ChannelSession.open(request, protocol)
        flags = ["--interactive"] if options.stdin else []
        flags += ["--tty"] if options.tty else []
        argv = self.setup.argv("exec", "--detach-keys", "", *flags, target.podman_name, *options.command)

        def final(code: int) -> dict[str, Any]:
            return exec_exit_status(code, options.command)

        await self._bridge(session, target, argv, options, tty=options.tty, final=final)
        return session.ws

    async def _bridge(
        self,
        session: ChannelSession,
        container: Tracked,
        argv: list[str],
        options: StreamOptions,
        *,
        tty: bool,
        final: Callable[[int], dict[str, Any]],
    ) -> None:
        """Run podman's client on a pty or pipes we own and pump the websocket channels through it."""
        queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        launch = Launch(argv, self.setup.env(), str(self.workdir))
        proc = await Proc.spawn(launch, lambda ch, data: queue.put_nowait((ch, data)), tty=tty, stdin=True)
        container.clients.add(proc)
        proc.exited.add_done_callback(lambda _: queue.put_nowait(None))
        forward = asyncio.create_task(
            forward_to_client(session, queue, options, lambda: final(proc.exited.result()))
        )
        try:
            await read_client_frames(session, proc, options)
        finally:
            if proc.running:  # the client went away: end podman's client, never the container
                await proc.terminate(1.0)
            container.clients.discard(proc)
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(forward, DRAIN_SECONDS)

    async def handle_log(
        self, request: web.Request, pod: dict[str, Any], container: str
    ) -> web.StreamResponse:
        """Read the container's CRI log file the way the kubelet does; a follow ends when the run ends."""
        query = _query_lists(request)
        tracked = self._tracked(pod, container)
        pod_name = (pod.get("metadata") or {}).get("name", "")
        if tracked is None or not tracked.started:
            reason = tracked.waiting_reason if tracked is not None else "ContainerCreating"
            return status_response(log_waiting_error(container, pod_name, reason))
        tail = (query.get("tailLines") or [""])[0]
        if tail and not tail.isdigit():
            return status_response(st.bad_request(f'invalid value for tailLines: "{tail}"'))
        options = LogOptions(
            follow=query_bool(query.get("follow", [])),
            timestamps=query_bool(query.get("timestamps", [])),
            tail_lines=int(tail) if tail else None,
        )
        run_ended = tracked.run_ended  # taken before the first read, so a later exit is never missed
        try:
            log_file = open(await self._log_path(tracked), "rb")  # noqa: SIM115 (closed below)
        except OSError as error:
            message = f'failed to open log file for container "{container}": {error.strerror}'
            return status_response(st.internal_error(message))
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        with log_file:
            await response.prepare(request)
            try:
                if options.follow:
                    ending = (run_ended, tracked.stop_requested)
                    await _follow_log(request, response, log_file, ending, options)
                else:
                    text = log_file.read()
                    await response.write(
                        crilog.render_log(text, tail_lines=options.tail_lines, timestamps=options.timestamps)
                    )
                await response.write_eof()
            except ConnectionError:
                pass  # the client stopped reading
        return response

    async def _log_path(self, tracked: Tracked) -> str:
        if not tracked.log_path:
            tracked.log_path = log_path_from_inspect(await self.inspect(tracked.podman_name) or {})
        return tracked.log_path


async def _follow_log(
    request: web.Request,
    response: web.StreamResponse,
    log_file: BinaryIO,
    ending: tuple[asyncio.Event, asyncio.Event],
    options: LogOptions,
) -> None:
    """Send the log (its last tailLines records), then what the container adds, until its run ends.

    `ending`: the run's end and the pod's removal. conmon writes the last records before podman
    reports the exit, so once the run is known to have ended, one more read to the end finds everything."""
    run_ended, removed = ending
    records, pending = crilog.split_records(log_file.read())
    shown = crilog.last_records(records, options.tail_lines)
    await response.write(crilog.render(shown, timestamps=options.timestamps))
    while True:
        ended = run_ended.is_set() or removed.is_set()  # taken before the read, never after it
        chunk = log_file.read(LOG_READ_BYTES)
        if chunk:
            records, pending = crilog.split_records(pending + chunk)
            if records:
                await response.write(crilog.render(records, timestamps=options.timestamps))
            continue
        if ended or _client_gone(request):
            return
        with contextlib.suppress(TimeoutError):  # the file has no event to wait on; the exit has one
            await asyncio.wait_for(run_ended.wait(), LOG_POLL_SECONDS)


def _client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()
