"""PURE: the resources the emulator serves, the discovery documents describing them, and the field
schema behind `fieldValidation=Strict`.

Discovery is the legacy (unaggregated) kind: kubectl asks for aggregated discovery first and falls back
when the answer's content type is plain `application/json`, as with an older API server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SERVER_VERSION = {
    "major": "1",
    "minor": "34",
    "gitVersion": "v1.34.0-kdebug",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_READ = ["get", "list", "watch"]
_ALL = ("all",)
_CRUD = ["create", "delete", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    name: str  # plural, as in URLs
    singular: str
    kind: str
    group: str
    version: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # subresource name -> (kind, verbs)
    subresources: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`pods`, `deployments.apps`: the resource as error messages name it."""
        return f"{self.name}.{self.group}" if self.group else self.name


RESOURCES: tuple[Resource, ...] = (
    Resource(
        "namespaces",
        "namespace",
        "Namespace",
        "",
        "v1",
        False,
        ("create", "delete", "get", "list", "watch"),
        ("ns",),
    ),
    Resource("nodes", "node", "Node", "", "v1", False, tuple(_READ), ("no",)),
    Resource(
        "pods",
        "pod",
        "Pod",
        "",
        "v1",
        True,
        tuple(_CRUD),
        ("po",),
        _ALL,
        {
            "attach": ("PodAttachOptions", ("create", "get")),
            "ephemeralcontainers": ("Pod", ("get", "patch", "update")),
            "exec": ("PodExecOptions", ("create", "get")),
            "log": ("Pod", ("get",)),
            "status": ("Pod", ("get",)),
        },
    ),
    Resource("events", "event", "Event", "", "v1", True, ("create", "get", "list", "watch"), ("ev",)),
    Resource("secrets", "secret", "Secret", "", "v1", True, ("create", "delete", "get", "list", "watch")),
    Resource("deployments", "deployment", "Deployment", "apps", "v1", True, tuple(_CRUD), ("deploy",), _ALL),
    Resource("replicasets", "replicaset", "ReplicaSet", "apps", "v1", True, tuple(_CRUD), ("rs",), _ALL),
    Resource("statefulsets", "statefulset", "StatefulSet", "apps", "v1", True, tuple(_CRUD), ("sts",), _ALL),
    Resource("daemonsets", "daemonset", "DaemonSet", "apps", "v1", True, tuple(_CRUD), ("ds",), _ALL),
    Resource("jobs", "job", "Job", "batch", "v1", True, tuple(_CRUD), (), _ALL),
)

# Review resources: create-only, answered by the server itself rather than stored.
REVIEWS: tuple[Resource, ...] = (
    Resource(
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        "authorization.k8s.io",
        "v1",
        False,
        ("create",),
    ),
    Resource(
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        "SelfSubjectRulesReview",
        "authorization.k8s.io",
        "v1",
        False,
        ("create",),
    ),
    Resource(
        "selfsubjectreviews",
        "selfsubjectreview",
        "SelfSubjectReview",
        "authentication.k8s.io",
        "v1",
        False,
        ("create",),
    ),
)

GROUP_VERSIONS: tuple[tuple[str, str], ...] = (
    ("apps", "v1"),
    ("batch", "v1"),
    ("authorization.k8s.io", "v1"),
    ("authentication.k8s.io", "v1"),
)


def find_resource(group: str, version: str, name: str) -> Resource | None:
    for resource in RESOURCES + REVIEWS:
        if (resource.group, resource.version, resource.name) == (group, version, name):
            return resource
    return None


def resource_by_plural(name: str) -> Resource | None:
    return next((r for r in RESOURCES if r.name == name), None)


def resource_by_kind(api_version: str, kind: str) -> Resource | None:
    return next((r for r in RESOURCES if r.api_version == api_version and r.kind == kind), None)


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_entry(group: str, version: str) -> dict[str, Any]:
    gv = {"groupVersion": f"{group}/{version}", "version": version}
    return {"name": group, "versions": [gv], "preferredVersion": gv}


def api_group_list(include_access_reviews: bool = True) -> dict[str, Any]:
    groups = [
        _group_entry(g, v) for g, v in GROUP_VERSIONS if include_access_reviews or g != "authorization.k8s.io"
    ]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict[str, Any] | None:
    for g, v in GROUP_VERSIONS:
        if g == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(g, v)}
    return None


def _resource_entry(resource: Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": resource.name,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": sorted(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    return entry


def api_resource_list(group: str, version: str, include_access_reviews: bool = True) -> dict[str, Any] | None:
    """The APIResourceList for one group/version, or None when the emulator does not serve it."""
    if group and (group, version) not in GROUP_VERSIONS:
        return None
    if not group and version != "v1":
        return None
    if group == "authorization.k8s.io" and not include_access_reviews:
        return None
    entries: list[dict[str, Any]] = []
    for resource in RESOURCES + REVIEWS:
        if (resource.group, resource.version) != (group, version):
            continue
        entries.append(_resource_entry(resource))
        for sub, (kind, verbs) in sorted(resource.subresources.items()):
            entries.append(
                {
                    "name": f"{resource.name}/{sub}",
                    "singularName": "",
                    "namespaced": resource.namespaced,
                    "kind": kind,
                    "verbs": list(verbs),
                }
            )
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}


# --- fieldValidation=Strict: the known fields, as deep as the emulator checks them -------------------

_META = {
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
}
_SECURITY_CONTEXT = {
    "allowPrivilegeEscalation",
    "appArmorProfile",
    "capabilities",
    "privileged",
    "procMount",
    "readOnlyRootFilesystem",
    "runAsGroup",
    "runAsNonRoot",
    "runAsUser",
    "seLinuxOptions",
    "seccompProfile",
    "windowsOptions",
}
_CONTAINER = {
    "args",
    "command",
    "env",
    "envFrom",
    "image",
    "imagePullPolicy",
    "lifecycle",
    "livenessProbe",
    "name",
    "ports",
    "readinessProbe",
    "resizePolicy",
    "resources",
    "restartPolicy",
    "restartPolicyRules",
    "securityContext",
    "startupProbe",
    "stdin",
    "stdinOnce",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "tty",
    "volumeDevices",
    "volumeMounts",
    "workingDir",
}
_POD_SPEC = {
    "activeDeadlineSeconds",
    "affinity",
    "automountServiceAccountToken",
    "containers",
    "dnsConfig",
    "dnsPolicy",
    "enableServiceLinks",
    "ephemeralContainers",
    "hostAliases",
    "hostIPC",
    "hostNetwork",
    "hostPID",
    "hostUsers",
    "hostname",
    "hostnameOverride",
    "imagePullSecrets",
    "initContainers",
    "nodeName",
    "nodeSelector",
    "os",
    "overhead",
    "preemptionPolicy",
    "priority",
    "priorityClassName",
    "readinessGates",
    "resourceClaims",
    "resources",
    "restartPolicy",
    "runtimeClassName",
    "schedulerName",
    "schedulingGates",
    "securityContext",
    "serviceAccount",
    "serviceAccountName",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "subdomain",
    "terminationGracePeriodSeconds",
    "tolerations",
    "topologySpreadConstraints",
    "volumes",
}
_TOP = {"apiVersion", "kind", "metadata", "spec", "status"}

# Schema nodes: a set of names (leaves below are free), or a dict name -> child schema; "[]" marks lists.
_CONTAINER_SCHEMA: dict[str, Any] = {**{k: None for k in _CONTAINER}, "securityContext": _SECURITY_CONTEXT}
_EPHEMERAL_SCHEMA: dict[str, Any] = {**_CONTAINER_SCHEMA, "targetContainerName": None}
_POD_SPEC_SCHEMA: dict[str, Any] = {
    **{k: None for k in _POD_SPEC},
    "containers": ("[]", _CONTAINER_SCHEMA),
    "initContainers": ("[]", _CONTAINER_SCHEMA),
    "ephemeralContainers": ("[]", _EPHEMERAL_SCHEMA),
}
_WORKLOAD_SPEC = {
    "deployments": {
        "replicas",
        "selector",
        "template",
        "strategy",
        "minReadySeconds",
        "revisionHistoryLimit",
        "paused",
        "progressDeadlineSeconds",
    },
    "replicasets": {"replicas", "selector", "template", "minReadySeconds"},
    "statefulsets": {
        "replicas",
        "selector",
        "template",
        "serviceName",
        "volumeClaimTemplates",
        "podManagementPolicy",
        "updateStrategy",
        "revisionHistoryLimit",
        "minReadySeconds",
        "persistentVolumeClaimRetentionPolicy",
        "ordinals",
    },
    "daemonsets": {"selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"},
    "jobs": {
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "podFailurePolicy",
        "successPolicy",
        "backoffLimit",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
        "selector",
        "manualSelector",
        "template",
        "ttlSecondsAfterFinished",
        "completionMode",
        "suspend",
        "podReplacementPolicy",
        "managedBy",
    },
}


def _schema_for(resource: str) -> dict[str, Any] | None:
    top: dict[str, Any] = {**{k: None for k in _TOP}, "metadata": _META}
    if resource == "pods":
        return {**top, "spec": _POD_SPEC_SCHEMA}
    if resource in _WORKLOAD_SPEC:
        template = {"metadata": _META, "spec": _POD_SPEC_SCHEMA}
        return {**top, "spec": {**{k: None for k in _WORKLOAD_SPEC[resource]}, "template": template}}
    if resource == "secrets":
        return {**top, "data": None, "stringData": None, "type": None, "immutable": None}
    if resource in ("namespaces", "nodes"):
        return top
    return None


def _walk(value: Any, schema: Any, path: str, found: list[str]) -> None:
    if schema is None:
        return
    if isinstance(schema, tuple):  # ("[]", item schema)
        if isinstance(value, list):
            for index, item in enumerate(value):
                _walk(item, schema[1], f"{path}[{index}]", found)
        return
    if not isinstance(value, dict):
        return
    known = schema if isinstance(schema, dict) else dict.fromkeys(schema)
    for key in value:
        child = f"{path}.{key}" if path else key
        if key not in known:
            found.append(child)
        else:
            _walk(value[key], known[key], child, found)


def unknown_fields(resource: str, obj: dict[str, Any]) -> list[str]:
    """Dotted paths of fields the API would not know (`spec.foo`, `spec.containers[0].bar`)."""
    schema = _schema_for(resource)
    found: list[str] = []
    if schema is not None:
        _walk(obj, schema, "", found)
    return found


__all__ = [
    "RESOURCES",
    "REVIEWS",
    "SERVER_VERSION",
    "Resource",
    "api_group",
    "api_group_list",
    "api_resource_list",
    "api_versions",
    "find_resource",
    "resource_by_kind",
    "resource_by_plural",
    "unknown_fields",
]


# --- OpenAPI v3: only what kubectl reads to learn that the server validates fields itself -----------
# kubectl create/apply look for the PATCH operation of the object's kind and its `fieldValidation`
# query parameter; found, they send fieldValidation=Strict instead of downloading schemas (/openapi/v2).

OPENAPI_HASH = "kdebug0001"


def _openapi_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root(include_access_reviews: bool = True) -> dict[str, Any]:
    gvs = [("", "v1"), *GROUP_VERSIONS]
    paths = {
        _openapi_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_openapi_path(g, v)}?hash={OPENAPI_HASH}"}
        for g, v in gvs
        if include_access_reviews or g != "authorization.k8s.io"
    }
    return {"paths": paths}


def _query_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}


def openapi_v3_group(group: str, version: str) -> dict[str, Any] | None:
    if (group, version) != ("", "v1") and (group, version) not in GROUP_VERSIONS:
        return None
    paths: dict[str, Any] = {}
    for resource in RESOURCES:
        if (resource.group, resource.version) != (group, version) or "patch" not in resource.verbs:
            continue
        base = "/" + _openapi_path(group, version)
        scope = "/namespaces/{namespace}" if resource.namespaced else ""
        gvk = {"group": group, "version": version, "kind": resource.kind}
        params = [_query_param(p) for p in ("dryRun", "fieldManager", "fieldValidation", "force")]
        paths[f"{base}{scope}/{resource.name}/{{name}}"] = {
            "patch": {
                "x-kubernetes-group-version-kind": gvk,
                "x-kubernetes-action": "patch",
                "parameters": params,
                "responses": {},
            },
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }
