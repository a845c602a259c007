"""The emulator's API server: an aiohttp app answering like kube-apiserver, and `Emulator`, which runs
it on 127.0.0.1 in a background thread with its own event loop.

Request flow: authenticate (bearer token, client cert, or anonymous) -> route (group/version/namespace/
resource/name/subresource) -> authorize (the user's rule table) -> handler -> Status body on failure.
Every request lands in the request log with its user and response code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime as dt
import json
import logging
import secrets
import shutil
import ssl
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from kdebug.security import podsecurity
from kdebug_emulator import authz, discovery, kubeconfig, status, tables
from kdebug_emulator import tls as certs
from kdebug_emulator.demo import (
    demo_namespace,
    random_suffix,
    rollout_status,
    shop_deployment,
    shop_pod,
    shop_replicaset,
    standalone_pods,
)
from kdebug_emulator.images import ImageTable
from kdebug_emulator.runtimes.base import ContainerEvents, Runtime, RuntimeFactory
from kdebug_emulator.runtimes.process import ProcessRuntime
from kdebug_emulator.store import (
    Obj,
    RequestListener,
    RequestLog,
    SelectorError,
    Store,
    TooOldError,
    build_selector,
)
from kdebug_emulator.validation import validate_ephemeral_update, validate_new_pod

log = logging.getLogger("kdebug_emulator")

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's limit for JSON request bodies
NODE_NAME = "kdebug-node"
POD_IP = "127.0.0.1"
DEFAULT_WATCH_TIMEOUT = 1800
CLIENT_CHECK_SECONDS = 0.5  # how often an idle watch checks that its client is still there
JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
_OPEN_PATHS = {"/version", "/healthz", "/readyz", "/livez"}  # system:public-info-viewer


class StatusError(Exception):
    """Answer the request with this Status body (and its code)."""

    def __init__(self, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("message", ""))
        self.body = body
        self.headers = headers or {}


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def timestamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def warning_header(text: str) -> str:
    """RFC 7234 warning value as the API server sends it: 299 - "text"."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)  # never a control char in a header
    return '299 - "' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'


API_KEY: web.AppKey[ApiServer] = web.AppKey("api")
USER_KEY: web.RequestKey[authz.User] = web.RequestKey("user")
# Set by a streaming handler that ended because its client went away: the request log then says 499
# whether the loss was met before or after the answer's headers went out.
CLIENT_LEFT: web.RequestKey[bool] = web.RequestKey("client_left")
# labels of the object a request carried (create) or targeted (by name), for the request log
LABELS_KEY: web.RequestKey[dict[str, str] | None] = web.RequestKey("labels")


# --- routing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    group: str
    version: str
    resource: discovery.Resource | None  # None: the group/version's discovery document
    namespace: str | None = None
    name: str = ""
    subresource: str = ""


def parse_route(path: str) -> Route | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return Route(group, version, None)
    namespace = None
    # /namespaces/NS/RESOURCE... is a namespaced path;
    # /namespaces/NAME[/status|finalize] is the namespace itself.
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    resource = discovery.find_resource(group, version, rest[0])
    if resource is None:
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in resource.subresources:
        return None
    if namespace is not None and not resource.namespaced:
        return None
    if name and resource.namespaced and namespace is None:
        return None
    return Route(group, version, resource, namespace, name, sub)


def verb_for(method: str, route: Route, watch: bool) -> str | None:
    if route.subresource in ("attach", "exec"):  # SPDY POSTs create; websocket GETs get (and see below)
        return {"GET": "get", "POST": "create"}.get(method)
    if route.name:
        return {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
    return {"GET": "watch" if watch else "list", "POST": "create"}.get(method)


def extra_verbs(request: web.Request, route: Route) -> tuple[str, ...]:
    """AuthorizePodWebsocketUpgradeCreatePermission (on by default since 1.35): a GET of pods/attach or
    pods/exec (the websocket upgrade) is authorized as `get` and then also needs `create`, which the SPDY
    POST always needed, so that read-only roles cannot open a shell."""
    return ("create",) if route.subresource in ("attach", "exec") and request.method == "GET" else ()


def _is_watch(query: Any) -> bool:
    return str(query.get("watch", "")).lower() in ("true", "1")


# --- object defaults and pod status ---------------------------------------------------------------


def _default_pull_policy(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if "@" in image:
        return "IfNotPresent"
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def default_container(container: Obj) -> Obj:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("imagePullPolicy", _default_pull_policy(str(container.get("image", ""))))
    container.setdefault("resources", {})
    return container


def default_pod_spec(spec: Obj) -> Obj:
    for key, value in (
        ("restartPolicy", "Always"),
        ("terminationGracePeriodSeconds", 30),
        ("dnsPolicy", "ClusterFirst"),
        ("securityContext", {}),
        ("schedulerName", "default-scheduler"),
        ("enableServiceLinks", True),
        ("preemptionPolicy", "PreemptLowerPriority"),
        ("priority", 0),
    ):
        spec.setdefault(key, value)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault(
        "tolerations",
        [
            {
                "key": f"node.kubernetes.io/{taint}",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
            for taint in ("not-ready", "unreachable")
        ],
    )
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                default_container(container)
    return spec


def qos_class(spec: Obj) -> str:
    resources = [c.get("resources") or {} for c in spec.get("containers") or [] if isinstance(c, dict)]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(k)
        and (r.get("requests") or (r.get("limits") or {})).get(k) == (r.get("limits") or {}).get(k)
        for r in resources
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _waiting(reason: str = "ContainerCreating") -> Obj:
    return {"waiting": {"reason": reason}}


def container_status(container: Obj, *, ephemeral: bool = False) -> Obj:
    entry: Obj = {
        "name": container["name"],
        "state": _waiting(),
        "lastState": {},
        "ready": False,
        "restartCount": 0,
        "image": container.get("image", ""),
        "imageID": "",
    }
    if not ephemeral:
        entry["started"] = False
    return entry


def initial_pod_status(pod: Obj, now: str) -> Obj:
    spec = pod["spec"]
    return {
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now},
        ],
        "hostIP": POD_IP,
        "hostIPs": [{"ip": POD_IP}],
        "startTime": now,
        "containerStatuses": [container_status(c) for c in spec.get("containers") or []],
        "qosClass": qos_class(spec),
    }


def pod_phase(pod: Obj) -> str:
    spec, status_ = pod["spec"], pod.get("status") or {}
    current = status_.get("phase", "Pending")
    states = [s.get("state") or {} for s in status_.get("containerStatuses") or []]
    if not states:
        return current
    if all("terminated" in s for s in states) and spec.get("restartPolicy") != "Always":
        ok = all(s["terminated"].get("exitCode", 0) == 0 for s in states)
        return "Succeeded" if ok else "Failed"
    if any("running" in s for s in states) or current == "Running":
        return "Running"
    return "Pending"


def _set_condition(conditions: list[Obj], kind: str, value: bool, now: str) -> None:
    text = "True" if value else "False"
    for condition in conditions:
        if condition["type"] == kind:
            if condition["status"] != text:
                condition.update(status=text, lastTransitionTime=now)
            return
    conditions.append({"type": kind, "status": text, "lastProbeTime": None, "lastTransitionTime": now})


def refresh_pod_status(pod: Obj, now: str) -> None:
    status_ = pod.setdefault("status", {})
    status_["phase"] = pod_phase(pod)
    statuses = status_.get("containerStatuses") or []
    all_ready = bool(statuses) and all(s.get("ready") for s in statuses)
    conditions = status_.setdefault("conditions", [])
    started = any("waiting" not in (s.get("state") or {}) for s in statuses)
    _set_condition(conditions, "PodReadyToStartContainers", started, now)
    _set_condition(conditions, "Initialized", True, now)
    _set_condition(conditions, "Ready", all_ready, now)
    _set_condition(conditions, "ContainersReady", all_ready, now)
    if status_["phase"] == "Running" and "podIP" not in status_:
        status_["podIP"] = POD_IP
        status_["podIPs"] = [{"ip": POD_IP}]


def default_object(resource: str, obj: Obj, now: str) -> Obj:
    """Defaults the API server fills on create."""
    meta = obj["metadata"]
    if resource == "pods":
        spec = default_pod_spec(obj.setdefault("spec", {}))
        spec.setdefault("nodeName", NODE_NAME)
        obj["status"] = initial_pod_status(obj, now)
    elif resource == "namespaces":
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
    elif resource == "secrets":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    elif resource in ("deployments", "replicasets", "statefulsets", "daemonsets", "jobs"):
        spec = obj.setdefault("spec", {})
        if resource != "daemonsets" and resource != "jobs":
            spec.setdefault("replicas", 1)
        template_spec = (spec.get("template") or {}).get("spec")
        if isinstance(template_spec, dict):
            default_pod_spec(template_spec)
        obj.setdefault("status", {})
    return obj


def node_object(now: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE_NAME,
            "labels": {
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": NODE_NAME,
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
            },
        },
        "spec": {},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": POD_IP},
                {"type": "Hostname", "address": NODE_NAME},
            ],
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "kdebug emulator",
                "kernelVersion": "6.1.0",
                "kubeletVersion": discovery.SERVER_VERSION["gitVersion"],
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "kdebug://0.1.0",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }


# --- the runtime of `runtime="none"`: no processes, containers only marked running ---------------


class NullRuntime(Runtime):
    """Marks containers running without running anything; attach/exec/log answer that there is no runtime."""

    name = "none"

    def __init__(
        self, events: ContainerEvents, workdir: Path, images: ImageTable, *, create_delay: float | None = 0.05
    ):
        self.events = events
        self.create_delay = create_delay  # nothing is created: containers run at once

    async def start_pod(self, pod: Obj) -> None:
        meta = pod["metadata"]
        for container in pod["spec"].get("containers") or []:
            self.events.container_state(
                meta["namespace"],
                meta["name"],
                container["name"],
                {"running": {"startedAt": timestamp(now_utc())}},
            )

    async def start_ephemeral(self, pod: Obj, container: Obj) -> None:
        meta = pod["metadata"]
        self.events.container_state(
            meta["namespace"],
            meta["name"],
            container["name"],
            {"running": {"startedAt": timestamp(now_utc())}},
            ephemeral=True,
        )

    async def stop_pod(self, namespace: str, name: str) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def _refuse(self, request: web.Request, pod: Obj, container: str) -> web.StreamResponse:
        return _status_response(status.bad_request("the kdebug emulator runs without a container runtime"))

    async def handle_attach(self, request: web.Request, pod: Obj, container: str) -> web.StreamResponse:
        return await self._refuse(request, pod, container)

    async def handle_exec(self, request: web.Request, pod: Obj, container: str) -> web.StreamResponse:
        return await self._refuse(request, pod, container)

    async def handle_log(self, request: web.Request, pod: Obj, container: str) -> web.StreamResponse:
        return await self._refuse(request, pod, container)


def _status_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=int(body.get("code", 500)), headers=headers)


# --- the API server -------------------------------------------------------------------------------


class ApiServer:
    """State and handlers. Runs on one event loop; `container_state` is the runtime's ContainerEvents."""

    def __init__(self, *, clock: Callable[[], dt.datetime] = now_utc, server_address: str = "127.0.0.1:0"):
        self.clock = clock
        self.store = Store(lambda: timestamp(self.clock()), lambda: str(uuid.uuid4()))
        self.users = authz.UserTable()
        self.requests = RequestLog()
        self.runtime: Runtime  # set by Emulator._startup, before the server answers anything
        self.access_reviews_enabled = True
        self.server_address = server_address
        self.on_change: Callable[[], None] = lambda: None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- ContainerEvents -------------------------------------------------------------------------
    def container_state(
        self,
        namespace: str,
        pod: str,
        container: str,
        state: dict,
        *,
        ephemeral: bool = False,
        ready: bool | None = None,
        image_id: str | None = None,
        restart_count: int | None = None,
    ) -> None:
        obj = self.store.get("pods", namespace, pod)
        if obj is None:
            return
        key = "ephemeralContainerStatuses" if ephemeral else "containerStatuses"
        statuses = obj.setdefault("status", {}).setdefault(key, [])
        entry = next((s for s in statuses if s["name"] == container), None)
        if entry is None:
            spec_key = "ephemeralContainers" if ephemeral else "containers"
            spec = next((c for c in obj["spec"].get(spec_key) or [] if c.get("name") == container), None)
            if spec is None:
                return
            entry = container_status(spec, ephemeral=ephemeral)
            statuses.append(entry)
        previous = entry.get("state") or {}
        if "terminated" in previous and "terminated" not in state:
            entry["lastState"] = previous
        entry["state"] = state
        entry["ready"] = bool(ready) if ready is not None else ("running" in state and not ephemeral)
        if not ephemeral:
            entry["started"] = "running" in state
        if image_id is not None:
            entry["imageID"] = image_id
        if restart_count is not None:
            entry["restartCount"] = restart_count
        refresh_pod_status(obj, timestamp(self.clock()))
        self.store.replace("pods", obj)
        self.on_change()

    # --- helpers ---------------------------------------------------------------------------------
    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("runtime task failed", exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def user_rules(self, user: authz.User) -> list[authz.Rule] | None:
        return None if "system:masters" in user.groups else user.rules

    def authorize(self, user: authz.User, attrs: authz.Attributes) -> None:
        if not authz.is_allowed(self.user_rules(user), attrs):
            raise StatusError(
                status.forbidden_rbac(
                    user.name,
                    attrs.verb,
                    attrs.resource,
                    attrs.namespace,
                    attrs.name or None,
                    attrs.group,
                    attrs.subresource,
                )
            )

    def require_namespace(self, namespace: str) -> None:
        if self.store.get("namespaces", None, namespace) is None:
            raise StatusError(status.not_found("namespaces", namespace))

    # --- in-process writes (Emulator.apply and the demo) ----------------------------------------
    def create_object(self, resource: str, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix(5, secrets.choice)
        default_object(resource, obj, timestamp(self.clock()))
        stored = self.store.create(resource, obj)
        if resource == "pods":
            self.spawn(self.runtime.start_pod(copy.deepcopy(stored)))
        self.on_change()
        return stored

    async def delete_object(self, resource: str, namespace: str | None, name: str) -> Obj | None:
        if resource == "namespaces":
            for res in discovery.RESOURCES:
                if res.namespaced:
                    for item in self.store.list(res.name, name):
                        await self.delete_object(res.name, name, item["metadata"]["name"])
        deleted = self.store.delete(resource, namespace, name)
        if deleted is not None and resource == "pods":
            await self.runtime.stop_pod(namespace or "", name)
        self.on_change()
        return deleted

    async def apply_object(self, obj: Obj) -> Obj:
        """Create or replace (delete + create for pods, so the runtime restarts them)."""
        resource = discovery.resource_by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if resource is None:
            raise ValueError(f"unsupported object {obj.get('apiVersion')}/{obj.get('kind')}")
        meta = obj.get("metadata") or {}
        namespace = (meta.get("namespace") or "default") if resource.namespaced else None
        obj = copy.deepcopy(obj)
        if namespace:
            obj["metadata"]["namespace"] = namespace
            if self.store.get("namespaces", None, namespace) is None:
                self.create_object(
                    "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
                )
        existing = self.store.get(resource.name, namespace, meta.get("name", ""))
        if existing is not None:
            if resource.name == "pods":
                await self.delete_object("pods", namespace, meta["name"])
            else:
                obj["metadata"] = {**existing["metadata"], **obj["metadata"]}
                default_object(resource.name, obj, existing["metadata"]["creationTimestamp"])
                return self.store.replace(resource.name, obj, spec_changed=True)
        return self.create_object(resource.name, obj)

    def install_basics(self) -> None:
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create_object(
                "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )
        self.store.create("nodes", node_object(timestamp(self.clock())))

    def install_demo(self, choose: Callable[[str], str] = secrets.choice) -> None:
        self.create_object("namespaces", demo_namespace())
        for pod in standalone_pods():
            self.create_object("pods", pod)
        deployment = self.create_object("deployments", shop_deployment())
        pod_hash = random_suffix(10, choose)
        rs = self.create_object("replicasets", shop_replicaset(pod_hash, deployment["metadata"]["uid"]))
        for _ in range(2):
            suffix = random_suffix(5, choose)
            self.create_object(
                "pods", shop_pod(rs["metadata"]["name"], pod_hash, rs["metadata"]["uid"], suffix)
            )
        for resource, obj in (("deployments", deployment), ("replicasets", rs)):
            obj["status"] = rollout_status(2)
            if resource == "deployments":
                obj["status"].pop("fullyLabeledReplicas")
                obj["status"]["updatedReplicas"] = 2
                obj["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "1"
            self.store.replace(resource, obj)


# --- admission helpers (validation and Pod Security come from their own modules) ------------------


def pod_security(namespace: Obj | None, pod: Obj) -> tuple[dict[str, Any] | None, list[str]]:
    """(403 Status or None, warnings) for a pod about to be stored in `namespace`."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    policy = podsecurity.policy_from_labels(labels)
    name = pod.get("metadata", {}).get("name", "")
    level, version = policy["enforce"]
    if level != "privileged":
        violations = podsecurity.check_pod(pod, level, version)
        if violations:
            return status.forbidden_pod_security(name, level, version, violations), []
    warnings: list[str] = []
    level, version = policy["warn"]
    if level != "privileged":
        violations = podsecurity.check_pod(pod, level, version)
        if violations:
            warnings.append(f'would violate PodSecurity "{level}:{version}": ' + ", ".join(violations))
    return None, warnings


_STRING_FIELDS = (
    "name",
    "image",
    "targetContainerName",
    "imagePullPolicy",
    "terminationMessagePolicy",
    "terminationMessagePath",
    "workingDir",
)
_BOOL_FIELDS = ("stdin", "stdinOnce", "tty")
_GO_TYPES = {
    str: "string",
    bool: "bool",
    int: "number",
    float: "number",
    list: "array",
    dict: "object",
    type(None): "null",
}


def _cannot_unmarshal(value: Any, field: str, go_type: str) -> StatusError:
    found = _GO_TYPES.get(type(value), "value")
    return StatusError(
        status.bad_request(
            f'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal {found} into Go struct '
            f"field {field} of type {go_type}"
        )
    )


def check_container_types(containers: Any, field: str) -> None:
    """The decoding step: values of the wrong JSON type are a 400, as Go's decoder reports them."""
    if containers is None:
        return
    if not isinstance(containers, list):
        raise _cannot_unmarshal(containers, f"PodSpec.{field}", "[]core.Container")
    for container in containers:
        if not isinstance(container, dict):
            raise _cannot_unmarshal(container, f"PodSpec.{field}", "core.Container")
        for key in _STRING_FIELDS:
            if key in container and not isinstance(container[key], str):
                raise _cannot_unmarshal(container[key], f"Container.{field}.{key}", "string")
        for key in _BOOL_FIELDS:
            if key in container and not isinstance(container[key], bool):
                raise _cannot_unmarshal(container[key], f"Container.{field}.{key}", "bool")
        for key in ("command", "args"):
            value = container.get(key)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise _cannot_unmarshal(value, f"Container.{field}.{key}", "[]string")
        for key in ("securityContext", "resources", "env", "volumeMounts", "ports"):
            value = container.get(key)
            wanted = dict if key in ("securityContext", "resources") else list
            if value is not None and not isinstance(value, wanted):
                raise _cannot_unmarshal(
                    value, f"Container.{field}.{key}", "object" if wanted is dict else "array"
                )


def check_object_types(obj: Any) -> None:
    if not isinstance(obj, dict):
        raise StatusError(
            status.bad_request(
                "couldn't get version/kind; json parse error: json: cannot unmarshal "
                f"{_GO_TYPES.get(type(obj), 'value')} into Go value of type struct"
            )
        )
    for key in ("metadata", "spec"):
        if key in obj and obj[key] is not None and not isinstance(obj[key], dict):
            raise _cannot_unmarshal(obj[key], f"Pod.{key}", "object")
    meta = obj.get("metadata") or {}
    for key in ("name", "namespace", "generateName", "resourceVersion"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], str):
            raise _cannot_unmarshal(meta[key], f"ObjectMeta.metadata.{key}", "string")
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is not None and not (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            raise _cannot_unmarshal(value, f"ObjectMeta.metadata.{key}", "map[string]string")
    spec = obj.get("spec") or {}
    for key in ("containers", "initContainers", "ephemeralContainers"):
        check_container_types(spec.get(key), f"spec.{key}")


# --- request plumbing -----------------------------------------------------------------------------

ANONYMOUS = "system:anonymous"


def authenticate(api: ApiServer, request: web.Request) -> authz.User:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        user = api.users.by_token(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if user is None:
            raise StatusError(status.unauthorized())
        return user
    peercert = request.transport.get_extra_info("peercert") if request.transport else None
    identity = certs.user_from_peercert(peercert)
    if identity is not None:
        name, groups = identity
        known = api.users.users.get(name)
        return authz.User(
            name=name,
            groups=tuple(groups),
            rules=known.rules if known else [],
            uid=known.uid if known else "",
        )
    return authz.User(name=ANONYMOUS, groups=("system:unauthenticated",), rules=[])


def _forbidden_path(user: authz.User, path: str) -> StatusError:
    return StatusError(
        status.status(403, "Forbidden", f'forbidden: User "{user.name}" cannot get path "{path}"', {})
    )


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise StatusError(status.entity_too_large(MAX_BODY))
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise StatusError(status.entity_too_large(MAX_BODY)) from None


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StatusError(status.bad_request(f"couldn't get version/kind; json parse error: {exc}")) from None


def _media_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def require_json_body(request: web.Request) -> None:
    media = _media_type(request)
    if media not in ("", JSON, "*/*"):
        raise StatusError(
            status.unsupported_media_type(
                media, "application/json, application/yaml, application/vnd.kubernetes.protobuf"
            )
        )


def field_warnings(request: web.Request, resource: str, obj: Obj) -> list[str]:
    """fieldValidation: Strict -> 400, Warn (the default) -> warnings, Ignore -> nothing."""
    mode = request.query.get("fieldValidation", "Warn")
    if mode not in ("Strict", "Warn", "Ignore"):
        raise StatusError(
            status.bad_request(
                f'fieldValidation parameter unsupported: "{mode}", must be one of: Ignore, Warn, Strict'
            )
        )
    if mode == "Ignore":
        return []
    unknown = [f'unknown field "{path}"' for path in discovery.unknown_fields(resource, obj)]
    if unknown and mode == "Strict":
        raise StatusError(status.bad_request("strict decoding error: " + ", ".join(unknown)))
    return unknown


def _json(body: Any, code: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {"Warning": ", ".join(warning_header(w) for w in warnings)} if warnings else None
    return web.json_response(body, status=code, headers=headers)


def _strip_list_item(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def _encode_continue(offset: int, rv: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "rv": rv}).encode()).decode()


def _decode_continue(token: str) -> int:
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["o"])
    except (ValueError, KeyError, TypeError):
        raise StatusError(
            status.bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
            )
        ) from None


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise StatusError(status.bad_request(f'invalid value for {name}: "{raw}"')) from None


def _selector(request: web.Request, resource: str) -> Any:
    try:
        return build_selector(
            resource, request.query.get("labelSelector"), request.query.get("fieldSelector")
        )
    except SelectorError as exc:
        raise StatusError(status.bad_request(str(exc))) from None


# --- handlers -------------------------------------------------------------------------------------


class Handlers:
    def __init__(self, api: ApiServer):
        self.api = api

    # plain endpoints
    async def version(self, request: web.Request) -> web.Response:
        return web.json_response(discovery.SERVER_VERSION)

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    def _discovery_user(self, request: web.Request) -> None:
        user: authz.User = request[USER_KEY]
        if user.name == ANONYMOUS:
            raise _forbidden_path(user, request.path)
        if request.method != "GET":
            raise StatusError(status.method_not_allowed())

    async def api_root(self, request: web.Request) -> web.Response:
        self._discovery_user(request)
        return web.json_response(discovery.api_versions(self.api.server_address))

    async def apis_root(self, request: web.Request) -> web.Response:
        self._discovery_user(request)
        return web.json_response(discovery.api_group_list(self.api.access_reviews_enabled))

    def openapi_v3(self, request: web.Request, rest: list[str]) -> web.Response:
        self._discovery_user(request)
        if not rest:
            return web.json_response(discovery.openapi_v3_root(self.api.access_reviews_enabled))
        group, version = (
            ("", rest[1])
            if rest[0] == "api" and len(rest) == 2
            else ((rest[1], rest[2]) if rest[0] == "apis" and len(rest) == 3 else ("?", "?"))
        )
        document = discovery.openapi_v3_group(group, version)
        if document is None:
            raise StatusError(status.resource_not_found())
        return web.json_response(document)

    # the catch-all: every resource URL
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path == "/api":
            return await self.api_root(request)
        if path == "/apis":
            return await self.apis_root(request)
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "apis":
            self._discovery_user(request)
            group = discovery.api_group(parts[1])
            if group is None or (parts[1] == "authorization.k8s.io" and not self.api.access_reviews_enabled):
                raise StatusError(status.resource_not_found())
            return web.json_response(group)
        if parts[:2] == ["openapi", "v3"]:
            return self.openapi_v3(request, parts[2:])
        route = parse_route(path)
        if route is None:
            raise StatusError(status.resource_not_found())
        if route.resource is None:
            self._discovery_user(request)
            listing = discovery.api_resource_list(route.group, route.version, self.api.access_reviews_enabled)
            if listing is None:
                raise StatusError(status.resource_not_found())
            return web.json_response(listing)
        if route.resource in discovery.REVIEWS:
            return await self.review(request, route)
        return await self.resource_request(request, route)

    async def resource_request(self, request: web.Request, route: Route) -> web.StreamResponse:
        res = route.resource
        assert res is not None
        watch = _is_watch(request.query)
        verb = verb_for(request.method, route, watch)
        allowed = res.subresources[route.subresource][1] if route.subresource else res.verbs
        if route.subresource == "log" and request.method == "GET":
            verb = "get"
        if verb is None or (verb not in allowed and not (verb == "watch" and "watch" in res.verbs)):
            raise StatusError(status.method_not_allowed())
        user: authz.User = request[USER_KEY]
        for needed in (verb, *extra_verbs(request, route)):
            self.api.authorize(
                user,
                authz.Attributes(
                    verb=needed,
                    resource=res.name,
                    subresource=route.subresource,
                    namespace=route.namespace,
                    group=res.group,
                    name=route.name,
                ),
            )
        if verb == "list":
            return self.list_objects(request, route)
        if verb == "watch":
            return await self.watch(request, route)
        if verb == "create" and not route.name:
            return await self.create(request, route)
        if route.subresource in ("attach", "exec", "log"):
            return await self.stream(request, route)
        current = self.api.store.get(res.name, route.namespace, route.name)
        if current is None:
            raise StatusError(status.not_found(res.name, route.name, res.group))
        request[LABELS_KEY] = dict(current["metadata"].get("labels") or {})
        if verb == "get":
            return self.render_one(request, route, current)
        if verb == "delete":
            deleted = await self.api.delete_object(res.name, route.namespace, route.name)
            return web.json_response(deleted)
        body = await read_body(request)
        if route.subresource == "ephemeralcontainers":
            return await self.update_ephemeral(request, current, body, patch=verb == "patch")
        return await self.update(request, route, current, body, patch=verb == "patch")

    # reads
    def render_one(self, request: web.Request, route: Route, obj: Obj) -> web.Response:
        res = route.resource
        assert res is not None
        if tables.wants_table(request.headers.get("Accept", "")):
            return web.json_response(
                tables.build_table(
                    res.name,
                    [obj],
                    self.api.clock(),
                    obj["metadata"]["resourceVersion"],
                    request.query.get("includeObject", "PartialObjectMetadata"),
                )
            )
        return web.json_response(obj)

    def list_objects(self, request: web.Request, route: Route) -> web.Response:
        res = route.resource
        assert res is not None
        items = self.api.store.list(res.name, route.namespace, _selector(request, res.name))
        rv = str(self.api.store.resource_version)
        limit = _int_param(request, "limit", 0)
        offset = _decode_continue(request.query["continue"]) if request.query.get("continue") else 0
        meta: Obj = {"resourceVersion": rv}
        page = items[offset:]
        if limit > 0 and len(page) > limit:
            meta["continue"] = _encode_continue(offset + limit, rv)
            meta["remainingItemCount"] = len(page) - limit
            page = page[:limit]
        if tables.wants_table(request.headers.get("Accept", "")):
            table = tables.build_table(
                res.name,
                page,
                self.api.clock(),
                rv,
                request.query.get("includeObject", "PartialObjectMetadata"),
            )
            table["metadata"].update(meta)
            return web.json_response(table)
        return web.json_response(
            {
                "kind": f"{res.kind}List",
                "apiVersion": res.api_version,
                "metadata": meta,
                "items": [_strip_list_item(item) for item in page],
            }
        )

    async def watch(self, request: web.Request, route: Route) -> web.StreamResponse:
        res = route.resource
        assert res is not None
        store = self.api.store
        selector = _selector(request, res.name)
        timeout = _int_param(request, "timeoutSeconds", DEFAULT_WATCH_TIMEOUT)
        bookmarks = request.query.get("allowWatchBookmarks", "").lower() in ("true", "1")
        as_table = tables.wants_table(request.headers.get("Accept", ""))
        since = request.query.get("resourceVersion", "")
        if since not in ("", "0") and not since.isdigit():
            raise StatusError(status.bad_request(f"invalid resource version: {since}"))
        watcher = store.subscribe(res.name, route.namespace, selector)
        try:
            backlog: list[tuple[str, Obj]] = []
            expired: dict[str, Any] | None = None
            initial_events = request.query.get("sendInitialEvents", "").lower() == "true"
            if since in ("", "0") or initial_events:
                # A streaming list (WatchList, client-go 1.35+): the current state as ADDED events, then
                # a bookmark marking their end; the emulator always has the newest state to give.
                backlog = [("ADDED", obj) for obj in store.list(res.name, route.namespace, selector)]
                if initial_events and bookmarks:
                    backlog.append(("BOOKMARK", self._bookmark(res, initial_events_end=True)))
            else:
                try:
                    backlog = [
                        (e.type, e.obj) for e in store.events_since(res.name, int(since)) if watcher.wants(e)
                    ]
                except TooOldError as exc:
                    expired = status.status(410, "Expired", str(exc))
            response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
            response.enable_chunked_encoding()
            await response.prepare(request)

            async def send(kind: str, obj: Obj) -> None:
                if as_table and kind in ("ADDED", "MODIFIED", "DELETED"):
                    obj = tables.build_table(
                        res.name, [obj], self.api.clock(), obj["metadata"]["resourceVersion"]
                    )
                # Writes that fit the buffer never yield, so a long backlog would go on writing to a
                # connection already lost (asyncio warns for each): let the loop report the loss first.
                await asyncio.sleep(0)
                if client_gone(request):
                    raise ConnectionResetError("the watch client left")
                await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

            try:
                if expired is not None:
                    await send("ERROR", expired)
                    await response.write_eof()
                    return response
                for kind, obj in backlog:
                    await send(kind, obj)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + max(timeout, 0)
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        if bookmarks:
                            await send("BOOKMARK", self._bookmark(res))
                        break
                    try:
                        event = await asyncio.wait_for(
                            watcher.queue.get(), timeout=min(remaining, CLIENT_CHECK_SECONDS)
                        )
                    except TimeoutError:
                        if client_gone(request):  # a quiet watch notices a client that left, too
                            request[CLIENT_LEFT] = True
                            break
                        continue
                    if event is None:  # the server is stopping
                        break
                    await send(event.type, event.obj)
                with contextlib.suppress(ConnectionError):
                    await response.write_eof()
            except ConnectionError:  # the client went away: the watch simply ends
                request[CLIENT_LEFT] = True
            return response
        finally:
            store.unsubscribe(watcher)

    def _bookmark(self, res: discovery.Resource, *, initial_events_end: bool = False) -> Obj:
        meta: Obj = {"resourceVersion": str(self.api.store.resource_version)}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}

    # writes
    async def create(self, request: web.Request, route: Route) -> web.Response:
        res = route.resource
        assert res is not None
        require_json_body(request)
        obj = parse_json(await read_body(request))
        check_object_types(obj)
        if not obj.get("kind"):
            raise StatusError(status.bad_request("Object 'Kind' is missing in the request body"))
        if obj.get("kind") != res.kind or obj.get("apiVersion") != res.api_version:
            raise StatusError(
                status.bad_request(
                    f"the API version in the data ({obj.get('apiVersion')}) does not match the expected "
                    "API version "
                    f"({res.api_version})"
                    if obj.get("apiVersion") != res.api_version
                    else f"the kind in the data ({obj.get('kind')}) does not match the expected kind "
                    f"({res.kind})"
                )
            )
        warnings = field_warnings(request, res.name, obj)
        meta = obj.setdefault("metadata", {})
        request[LABELS_KEY] = dict(meta.get("labels") or {})
        for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp"):
            meta.pop(key, None)
        obj.pop("status", None)
        if res.namespaced:
            if meta.get("namespace") and meta["namespace"] != route.namespace:
                raise StatusError(
                    status.bad_request(
                        "the namespace of the provided object does not match the namespace sent on the "
                        "request"
                    )
                )
            meta["namespace"] = route.namespace
        if not meta.get("name") and not meta.get("generateName"):
            raise StatusError(
                status.invalid(
                    res.kind,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: name or generateName is required",
                            "field": "metadata.name",
                        }
                    ],
                )
            )
        if res.namespaced and route.namespace:
            self.api.require_namespace(route.namespace)
        if meta.get("name") and self.api.store.get(res.name, route.namespace, meta["name"]) is not None:
            raise StatusError(status.already_exists(res.name, meta["name"], res.group))
        if res.name == "pods":
            default_pod_spec(obj.setdefault("spec", {}))
            causes = validate_new_pod(obj)
            if causes:
                raise StatusError(status.invalid("Pod", meta.get("name", ""), causes))
            namespace = self.api.store.get("namespaces", None, route.namespace or "")
            refusal, psa_warnings = pod_security(namespace, obj)
            if refusal is not None:
                raise StatusError(refusal)
            warnings += psa_warnings
        if request.query.get("dryRun"):
            default_object(res.name, obj, timestamp(self.api.clock()))
            return _json(obj, 201, warnings)
        return _json(self.api.create_object(res.name, obj), 201, warnings)

    async def update(
        self, request: web.Request, route: Route, current: Obj, body: bytes, *, patch: bool
    ) -> web.Response:
        """PUT or PATCH of a whole object (not a subresource)."""
        res = route.resource
        assert res is not None
        new = self._patched(request, current, body) if patch else self._put_body(request, res, current, body)
        check_object_types(new)
        warnings = field_warnings(request, res.name, new)
        self._check_precondition(res, current, new)
        meta = new.setdefault("metadata", {})
        for key in ("name", "namespace", "uid", "creationTimestamp", "generation"):
            if key in current["metadata"]:
                meta[key] = current["metadata"][key]
        new["kind"], new["apiVersion"] = res.kind, res.api_version
        if res.name == "pods":
            new["status"] = current.get("status", {})
            default_pod_spec(new.setdefault("spec", {}))
            self._check_pod_update(current, new)
        if new == current:
            return _json(current, 200, warnings)
        stored = self.api.store.replace(res.name, new, spec_changed=new.get("spec") != current.get("spec"))
        self.api.on_change()
        return _json(stored, 200, warnings)

    def _patched(self, request: web.Request, current: Obj, body: bytes) -> Any:
        from kdebug_emulator.patch import PatchError, apply_patch

        try:
            return apply_patch(request.headers.get("Content-Type", ""), copy.deepcopy(current), body)
        except PatchError as exc:
            if (
                int(exc.status.get("code", 500)) >= 500
            ):  # a patch the merge cannot apply is the client's fault
                raise StatusError(
                    status.bad_request(str(exc.status.get("message", "invalid patch")))
                ) from None
            raise StatusError(exc.status) from None
        except RecursionError:
            raise StatusError(status.bad_request("the patch is nested too deeply")) from None

    def _put_body(self, request: web.Request, res: discovery.Resource, current: Obj, body: bytes) -> Any:
        require_json_body(request)
        new = parse_json(body)
        check_object_types(new)
        name = (new.get("metadata") or {}).get("name")
        if name != current["metadata"]["name"]:
            raise StatusError(
                status.bad_request(
                    f"the name of the object ({name}) does not match the name on the URL "
                    f"({current['metadata']['name']})"
                )
            )
        return new

    @staticmethod
    def _check_precondition(res: discovery.Resource, current: Obj, new: Obj) -> None:
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise StatusError(
                status.conflict(
                    res.name,
                    current["metadata"]["name"],
                    "the object has been modified; please apply your changes to the latest version and "
                    "try again",
                    res.group,
                )
            )

    @staticmethod
    def _check_pod_update(current: Obj, new: Obj) -> None:
        def comparable(spec: Obj) -> Obj:
            spec = copy.deepcopy(spec)
            for container in spec.get("containers") or []:
                if isinstance(container, dict):
                    container.pop("image", None)
            spec.pop("activeDeadlineSeconds", None)
            return spec

        if comparable(current["spec"]) != comparable(new["spec"]):
            raise StatusError(
                status.invalid(
                    "Pod",
                    current["metadata"]["name"],
                    [
                        {
                            "reason": "FieldValueForbidden",
                            "field": "spec",
                            "message": "Forbidden: pod updates may not change fields other than "
                            "`spec.containers[*].image`,"
                            "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                            "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                            "(allow it to be set to 1 if it was previously negative)",
                        }
                    ],
                )
            )

    async def update_ephemeral(
        self, request: web.Request, current: Obj, body: bytes, *, patch: bool
    ) -> web.Response:
        """pods/NAME/ephemeralcontainers: only spec.ephemeralContainers may change."""
        res = discovery.resource_by_plural("pods")
        assert res is not None
        requested = (
            self._patched(request, current, body) if patch else self._put_body(request, res, current, body)
        )
        check_object_types(requested)
        warnings = field_warnings(request, "pods", requested)
        self._check_precondition(res, current, requested)
        containers = (requested.get("spec") or {}).get("ephemeralContainers") or []
        new = copy.deepcopy(current)  # everything else is dropped, as the API server's strategy does
        new["spec"]["ephemeralContainers"] = [default_container(copy.deepcopy(c)) for c in containers]
        if not new["spec"]["ephemeralContainers"]:
            new["spec"].pop("ephemeralContainers")
        name = current["metadata"]["name"]
        try:
            causes = validate_ephemeral_update(current, new)
        except (TypeError, KeyError, AttributeError, ValueError):
            raise StatusError(status.bad_request(f'Pod "{name}" could not be decoded')) from None
        if causes:
            raise StatusError(status.invalid("Pod", name, causes))
        namespace = self.api.store.get("namespaces", None, current["metadata"]["namespace"])
        refusal, psa_warnings = pod_security(namespace, new)
        if refusal is not None:
            raise StatusError(refusal)
        warnings += psa_warnings
        if new == current:
            return _json(current, 200, warnings)
        old_names = {c["name"] for c in current["spec"].get("ephemeralContainers") or []}
        added = [c for c in new["spec"].get("ephemeralContainers") or [] if c["name"] not in old_names]
        statuses = new.setdefault("status", {}).setdefault("ephemeralContainerStatuses", [])
        statuses.extend(container_status(c, ephemeral=True) for c in added)
        stored = self.api.store.replace("pods", new)
        self.api.on_change()
        for container in added:
            self.api.spawn(self.api.runtime.start_ephemeral(copy.deepcopy(stored), copy.deepcopy(container)))
        return _json(stored, 200, warnings)

    # streams
    async def stream(self, request: web.Request, route: Route) -> web.StreamResponse:
        pod = self.api.store.get("pods", route.namespace, route.name)
        if pod is None:
            raise StatusError(status.not_found("pods", route.name))
        container = self._pick_container(request, pod)
        kind = route.subresource
        phase = (pod.get("status") or {}).get("phase")
        if kind in ("attach", "exec") and phase in ("Succeeded", "Failed"):
            action = "attach a container" if kind == "attach" else "exec into a container"
            raise StatusError(
                status.bad_request(f"cannot {action} in a completed pod; current phase is {phase}")
            )
        if kind == "log":  # the runtime words log refusals (waiting containers) as the kubelet does
            return await self.api.runtime.handle_log(request, pod, container)
        state = self._container_state(pod, container)
        if "waiting" in state:
            reason = state["waiting"].get("reason", "ContainerCreating")
            raise StatusError(
                status.bad_request(
                    f'container "{container}" in pod "{route.name}" is waiting to start: {reason}'
                )
            )
        if kind == "exec" and not request.query.getall("command", []):
            raise StatusError(status.bad_request("you must specify at least 1 command"))
        if request.method != "GET" or request.headers.get("Upgrade", "").lower() != "websocket":
            # SPDY (POST with Upgrade: SPDY/3.1) is not spoken here: kubectl's websocket client is.
            raise StatusError(status.bad_request("Upgrade request required"))
        handler = self.api.runtime.handle_attach if kind == "attach" else self.api.runtime.handle_exec
        return await handler(request, pod, container)

    @staticmethod
    def _pick_container(request: web.Request, pod: Obj) -> str:
        spec = pod["spec"]
        regular = [c["name"] for c in spec.get("containers") or []]
        init = [c["name"] for c in spec.get("initContainers") or []]
        ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
        wanted = request.query.get("container", "")
        name = pod["metadata"]["name"]
        if not wanted:
            if len(regular) == 1:
                return regular[0]
            message = (
                f"a container name must be specified for pod {name}, choose one of: [{' '.join(regular)}]"
            )
            if init:
                message += f" or one of the init containers: [{' '.join(init)}]"
            if ephemeral:
                message += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
            raise StatusError(status.bad_request(message))
        if wanted not in regular + init + ephemeral:
            raise StatusError(status.bad_request(f"container {wanted} is not valid for pod {name}"))
        return wanted

    @staticmethod
    def _container_state(pod: Obj, container: str) -> Obj:
        status_ = pod.get("status") or {}
        for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
            for entry in status_.get(key) or []:
                if entry.get("name") == container:
                    return entry.get("state") or {}
        return {"waiting": {"reason": "ContainerCreating"}}

    # reviews
    async def review(self, request: web.Request, route: Route) -> web.Response:
        res = route.resource
        assert res is not None
        if res.group == "authorization.k8s.io" and not self.api.access_reviews_enabled:
            raise StatusError(status.resource_not_found())
        if request.method != "POST" or route.name or route.namespace:
            raise StatusError(status.method_not_allowed())
        user: authz.User = request[USER_KEY]
        if user.name == ANONYMOUS:
            raise StatusError(status.forbidden_rbac(user.name, "create", res.name, None, group=res.group))
        raw = await read_body(request)
        if _media_type(request) == PROTOBUF:  # kubectl auth can-i / whoami send these as protobuf
            try:
                body: Any = authz.decode_access_review_protobuf(raw)
            except (ValueError, UnicodeDecodeError):
                raise StatusError(status.bad_request("the protobuf body could not be decoded")) from None
        else:
            require_json_body(request)
            body = parse_json(raw)
        if not isinstance(body, dict):
            raise StatusError(
                status.bad_request("couldn't get version/kind; json parse error: not an object")
            )
        if res.name == "selfsubjectreviews":
            return web.json_response(authz.self_subject_review(user), status=201)
        reviewer = authz.User(user.name, user.groups, self.api.user_rules(user))
        if res.name == "selfsubjectrulesreviews":
            return web.json_response(authz.rules_review_response(body, reviewer), status=201)
        return web.json_response(authz.access_review_response(body, reviewer), status=201)


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _log_entry(request: web.Request, user_name: str, code: int) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "user": user_name,
        "user_agent": request.headers.get("User-Agent", ""),
        "code": code,
        "content_type": request.headers.get("Content-Type", ""),
        "labels": request.get(LABELS_KEY),
    }


@web.middleware
async def request_middleware(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
    api: ApiServer = request.app[API_KEY]
    user_name = ""
    code = 500
    try:
        user = authenticate(api, request)
        user_name = user.name
        request[USER_KEY] = user
        if (
            user.name == ANONYMOUS
            and request.path not in _OPEN_PATHS
            and not request.path.startswith(("/api", "/apis"))
        ):
            raise _forbidden_path(user, request.path)
        response = await handler(request)
        code = 499 if request.get(CLIENT_LEFT) else response.status
        return response
    except StatusError as exc:
        code = int(exc.body.get("code", 500))
        return _status_response(exc.body, exc.headers)
    except web.HTTPException as exc:  # raised by aiohttp itself (e.g. a body over the size limit)
        code = exc.status
        reason = "RequestEntityTooLarge" if exc.status == 413 else "BadRequest"
        body = (
            status.entity_too_large(MAX_BODY)
            if exc.status == 413
            else status.status(exc.status, reason, exc.reason or "bad request")
        )
        return _status_response(body)
    except asyncio.CancelledError:
        code = 499
        raise
    except ConnectionError as exc:
        if not client_gone(request):
            log.exception("internal error answering %s %s", request.method, request.path)
            return _status_response(status.internal_error(type(exc).__name__))
        # The client went away (a watch, stream or upload it left): normal, not an error. aiohttp would log
        # any exception escaping here with a traceback; a response nobody reads ends the request quietly.
        code = 499
        log.debug("client left %s %s: %s", request.method, request.path, exc)
        return web.Response(status=499)
    except Exception as exc:
        log.exception("internal error answering %s %s", request.method, request.path)
        return _status_response(status.internal_error(type(exc).__name__))
    finally:
        api.requests.add(_log_entry(request, user_name, code))


def build_app(api: ApiServer) -> web.Application:
    app = web.Application(middlewares=[request_middleware], client_max_size=MAX_BODY)
    app[API_KEY] = api
    handlers = Handlers(api)
    app.router.add_get("/version", handlers.version)
    for path in ("/healthz", "/readyz", "/livez"):
        app.router.add_get(path, handlers.health)
    app.router.add_route("*", "/{tail:.*}", handlers.dispatch)
    return app


class Emulator:
    """The emulator in a background thread. See docs/emulator.md; the API below is what tests use."""

    def __init__(
        self,
        demo: bool = False,
        tls: bool = True,
        runtime: str | RuntimeFactory = "process",
        workdir: Path | str | None = None,
        port: int = 0,
        create_delay: float | None = 0.05,
        image_mirrors: dict[str, str] | None = None,
        image_digests: dict[str, str] | None = None,
    ):
        self.demo = demo
        self.image_mirrors = dict(image_mirrors or {})
        self.image_digests = dict(image_digests or {})
        self.tls = tls
        self.port = port
        self.create_delay = create_delay
        self._runtime_spec = runtime
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="kdebug-emu-")) if workdir is None else Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.api = ApiServer()
        self._changed = threading.Event()
        self.api.on_change = self._changed.set
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self._ca: certs.CertificateAuthority | None = None
        self.url = ""
        self.kubeconfig: Path = self.workdir / "kubeconfig"
        self.runtime_name = ""

    # --- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Emulator:
        self._thread = threading.Thread(target=self._run, name="kdebug-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=60):
            raise RuntimeError("the emulator did not start within 60 s")
        if self._startup_error is not None:
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            raise RuntimeError(
                f"the emulator failed to start: {self._startup_error}"
            ) from self._startup_error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # reported to start()'s caller
            self._startup_error = exc
            # a runtime already made (podman's registry, containers) must not outlive the failed start
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._shutdown())
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def _make_runtime(self) -> Runtime:
        spec = self._runtime_spec
        images = ImageTable(mirrors=self.image_mirrors, digests=self.image_digests)
        if callable(spec):
            return spec(self.api, self.workdir, images, create_delay=self.create_delay)
        if spec == "process":
            return ProcessRuntime(self.api, self.workdir / "runtime", images, create_delay=self.create_delay)
        if spec == "podman":  # real containers (kdebug_emulator/runtimes/podman.py); needs a working podman
            from kdebug_emulator.runtimes.podman import PodmanRuntime

            return PodmanRuntime(self.api, self.workdir / "runtime", images, create_delay=self.create_delay)
        if spec == "none":
            return NullRuntime(self.api, self.workdir, images, create_delay=self.create_delay)
        raise ValueError(f"unknown runtime {spec!r}")

    async def _startup(self) -> None:
        self.api.runtime = self._make_runtime()
        self.runtime_name = self.api.runtime.name
        ssl_context = self._ssl_context() if self.tls else None
        app = build_app(self.api)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=ssl_context)
        await site.start()
        sockets = site._server.sockets if site._server else []  # noqa: SLF001 (the bound port)
        self.port = sockets[0].getsockname()[1]
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.api.server_address = f"127.0.0.1:{self.port}"
        self.api.install_basics()
        self.add_user("admin", groups=("system:masters",))
        if self.demo:
            self.api.install_demo()
        self.kubeconfig = self.write_kubeconfig(self.workdir / "kubeconfig")

    def _ssl_context(self) -> ssl.SSLContext:
        now = now_utc()
        self._ca = certs.make_ca(now)
        pair = certs.make_server_cert(self._ca, now)
        tls_dir = self.workdir / "tls"
        tls_dir.mkdir(mode=0o700, exist_ok=True)
        (tls_dir / "ca.crt").write_bytes(self._ca.cert_pem)
        (tls_dir / "server.crt").write_bytes(pair.cert_pem)
        key_path = tls_dir / "server.key"
        key_path.touch(mode=0o600)
        key_path.write_bytes(pair.key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls_dir / "server.crt", key_path)
        context.load_verify_locations(cadata=self._ca.cert_pem.decode())
        context.verify_mode = ssl.CERT_OPTIONAL  # client certs authenticate; tokens work without one
        return context

    async def _shutdown(self) -> None:
        self.api.store.close_watchers()
        runtime: Runtime | None = getattr(self.api, "runtime", None)  # None: its construction failed
        if runtime is not None:
            with contextlib.suppress(Exception):
                await runtime.shutdown()
        await self.api.cancel_tasks()
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            self._thread = None
            if self._own_workdir:  # keys, kubeconfig and runtime files of a temporary emulator
                shutil.rmtree(self.workdir, ignore_errors=True)

    # --- calls onto the loop ---------------------------------------------------------------------
    def _call(self, fn: Callable[[], Any]) -> Any:
        if self._loop is None:
            raise RuntimeError("the emulator is not running")

        async def run() -> Any:
            result = fn()
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    # --- users and kubeconfigs -------------------------------------------------------------------
    def add_user(
        self, name: str, groups: tuple[str, ...] | list[str] = (), rules: list[authz.Rule] | None = None
    ) -> authz.User:
        user = authz.User(
            name=name,
            groups=tuple(groups),
            rules=copy.deepcopy(rules),
            token=secrets.token_urlsafe(24),
            uid=str(uuid.uuid4()),
        )
        self.api.users.users[name] = user
        return user

    def set_rules(self, name: str, rules: list[authz.Rule] | None) -> None:
        self.api.users.users[name].rules = copy.deepcopy(rules)

    def write_kubeconfig(
        self,
        path: Path | str,
        user: str = "admin",
        namespace: str = "default",
        auth: str = "token",
        context: str = "kdebug-emulator",
        extensions: dict[str, Any] | None = None,
    ) -> Path:
        account = self.api.users.users.get(user) or self.add_user(user)
        ca_pem = self._ca.cert_pem if self._ca is not None else None
        if auth == "cert":
            if self._ca is None:
                raise ValueError("client certificates need tls=True")
            pair = certs.make_client_cert(self._ca, account.name, account.groups, now_utc())
            config = kubeconfig.build_kubeconfig(
                server=self.url,
                ca_pem=ca_pem,
                user=user,
                namespace=namespace,
                context=context,
                client_cert_pem=pair.cert_pem,
                client_key_pem=pair.key_pem,
                extensions=extensions,
            )
        elif auth == "token":
            config = kubeconfig.build_kubeconfig(
                server=self.url,
                ca_pem=ca_pem,
                user=user,
                namespace=namespace,
                context=context,
                token=account.token,
                extensions=extensions,
            )
        else:
            raise ValueError(f"auth must be 'token' or 'cert', not {auth!r}")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(mode=0o600)
        target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return target

    # --- objects ---------------------------------------------------------------------------------
    def apply(self, obj: Obj) -> Obj:
        return self._call(lambda: self.api.apply_object(obj))

    def get(self, resource: str, namespace: str | None, name: str) -> Obj | None:
        return self._call(lambda: self.api.store.get(resource, namespace, name))

    def list(self, resource: str, namespace: str | None = None) -> list[Obj]:
        return self._call(lambda: self.api.store.list(resource, namespace))

    def delete(self, resource: str, namespace: str | None, name: str) -> None:
        self._call(lambda: self.api.delete_object(resource, namespace, name))

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        """Wait until predicate() is true, re-checking whenever the store changes."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not predicate():
                if deadline.is_set():
                    raise TimeoutError(f"condition not met within {timeout} s")
                self._changed.wait(timeout=0.05)  # also re-check now and then: predicates may read files
                self._changed.clear()
        finally:
            timer.cancel()

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.api.requests.snapshot()

    def on_request(self, listener: RequestListener) -> None:
        """Call `listener` with each request log entry as it is added (on the server's thread)."""
        self.api.requests.subscribe(listener)

    def set_create_delay(self, seconds: float | None) -> None:
        """How long containers started from now on stay in ContainerCreating; None: until the pod goes.

        Thread-safe (applied on the server's loop); containers already starting keep their delay.
        """
        if seconds is not None and seconds < 0:
            raise ValueError("a create delay cannot be negative")
        self.create_delay = seconds

        def apply() -> None:
            self.api.runtime.create_delay = seconds

        if self._loop is None:
            return  # not started: _make_runtime passes self.create_delay on
        self._call(apply)

    @property
    def access_reviews_enabled(self) -> bool:
        return self.api.access_reviews_enabled

    @access_reviews_enabled.setter
    def access_reviews_enabled(self, value: bool) -> None:
        self.api.access_reviews_enabled = value

    @property
    def store(self) -> Store:
        return self.api.store

    def token(self, user: str = "admin") -> str:
        return self.api.users.users[user].token

    @property
    def ca_path(self) -> Path | None:
        return self.workdir / "tls" / "ca.crt" if self._ca is not None else None
