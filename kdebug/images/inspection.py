"""Orchestration: a pod dict -> per-container classification and debug image choice.

Evidence is gathered cheapest first and only as far as needed: the reference (with mirror rewrites
undone, so a mirrored distroless name still reads as distroless), the running digest from
`status.containerStatuses[].imageID`, then the registry (manifest + config, then layer files while
the verdict is still open). A registry that cannot answer degrades the verdict, never the command.
Prints nothing; `progress` receives short human messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from kdebug.config import cache_dir
from kdebug.errors import KdebugError, UsageError
from kdebug.images.catalog import Catalog, load_catalog
from kdebug.images.classify import Classification, classify_image, is_conclusive
from kdebug.images.reference import apply_mirrors, digest_from_image_id, parse_image_ref, undo_mirrors
from kdebug.images.registry import EvidenceCache, RegistryClient, auths_from_pull_secret, default_platform
from kdebug.images.selection import choose_debug_image, fallback_choice, sent_image
from kdebug.kube import paths
from kdebug.models import ImageChoice

if TYPE_CHECKING:
    from kdebug.kube.api import KubeApi

REPORT_API_VERSION = "kdebug.dev/v1"
Progress = Callable[[str], None]
SecretGetter = Callable[[str, str], dict[str, Any]]  # (namespace, name) -> Secret dict


def classify_container_image(
    image: str,
    image_id: str | None,
    catalog: Catalog,
    registry: RegistryClient | None,
    platform: str,
    pull_auths: dict[str, Any] | None = None,
    progress: Progress = lambda message: None,
) -> tuple[Classification, dict[str, Any]]:
    """The verdict for one image plus what the registry step did (for the report)."""
    info: dict[str, Any] = {
        "consulted": False,
        "from_cache": False,
        "error": None,
        "reference": None,
        "manifest_digest": None,
        "size": None,
    }
    try:
        ref = parse_image_ref(image)
    except UsageError as exc:
        return classify_image({"reference": image}), {**info, "error": str(exc)}
    mirrors = list(catalog.mirrors)
    upstream = undo_mirrors(ref, mirrors)
    fetch_from = apply_mirrors(ref, mirrors)
    info["reference"] = str(fetch_from)
    evidence: dict[str, Any] = {"reference": str(upstream), "image_id": image_id}
    verdict = classify_image(evidence)
    if is_conclusive(verdict) or registry is None:
        return verdict, info
    progress(f"reading {fetch_from} from its registry")
    info["consulted"] = True

    def want_files(image_config: dict[str, Any]) -> bool:
        partial = classify_image(
            {
                **evidence,
                "config": image_config.get("config") or {},
                "history": image_config.get("history") or [],
            }
        )
        return not is_conclusive(partial)

    try:
        found = registry.image_evidence(
            fetch_from, platform, digest_from_image_id(image_id), pull_auths, want_files
        )
    except KdebugError as exc:
        evidence["registry_error"] = exc.message
        info["error"] = exc.message
        return classify_image(evidence), info
    info.update(from_cache=found["from_cache"], manifest_digest=found["manifest_digest"], size=found["size"])
    evidence.update(config=found["config"], history=found["history"], files=found["files"])
    return classify_image(evidence), info


def inspect_pod(
    pod: dict[str, Any],
    target_container: str | None,
    catalog: Catalog,
    registry: RegistryClient | None,
    platform: str,
    pull_auths: dict[str, Any] | None = None,
    override_image: str | None = None,
    progress: Progress = lambda message: None,
) -> dict[str, Any]:
    """The `kdebug inspect -o json` document (docs/inspect-json.md), without the optional `spec`."""
    metadata = pod.get("metadata") or {}
    statuses = {s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or []}
    containers = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        name = container.get("name", "")
        status = statuses.get(name) or {}
        classification, registry_info = classify_container_image(
            container.get("image", ""),
            status.get("imageID") or None,
            catalog,
            registry,
            platform,
            pull_auths,
            progress,
        )
        containers.append(
            _container_report(
                pod,
                container,
                status,
                classification,
                registry_info,
                catalog,
                name == target_container,
                override_image,
            )
        )
    return {
        "apiVersion": REPORT_API_VERSION,
        "kind": "Inspection",
        "pod": {
            "namespace": metadata.get("namespace"),
            "name": metadata.get("name"),
            "node": (pod.get("spec") or {}).get("nodeName"),
            "phase": (pod.get("status") or {}).get("phase"),
        },
        "platform": platform,
        "target": target_container,
        "containers": containers,
    }


def _container_report(
    pod: dict[str, Any],
    container: dict[str, Any],
    status: dict[str, Any],
    classification: Classification,
    registry_info: dict[str, Any],
    catalog: Catalog,
    is_target: bool,
    override_image: str | None,
) -> dict[str, Any]:
    name = container.get("name", "")
    image_id = status.get("imageID") or None
    debug: dict[str, Any]
    try:
        selection = choose_debug_image(
            classification,
            catalog,
            _upstream_name(container.get("image", ""), catalog),
            pod,
            name,
            override_image if is_target else None,
        )
        choice = selection.choice
        debug = {
            "image": choice.image,
            "shell": choice.shell,
            "reason": choice.reason,
            "runAsUser": choice.run_as_user,
            "runAsGroup": choice.run_as_group,
            "family": selection.family,
            "warnings": list(selection.warnings),
            "error": None,
        }
    except KdebugError as exc:
        debug = {
            "image": None,
            "shell": None,
            "reason": None,
            "runAsUser": None,
            "runAsGroup": None,
            "family": None,
            "warnings": [],
            "error": exc.message,
        }
    return {
        "name": name,
        "target": is_target,
        "image": container.get("image"),
        "imageID": image_id,
        "digest": registry_info.get("manifest_digest") or digest_from_image_id(image_id),
        "classification": classification.to_dict(),
        "hasShell": classification.has_shell,
        "user": _user_text(classification),
        "registry": registry_info,
        "debugImage": debug,
    }


def _upstream_name(image: str, catalog: Catalog) -> str:
    try:
        return str(undo_mirrors(parse_image_ref(image), list(catalog.mirrors)))
    except UsageError:
        return image


def _user_text(classification: Classification) -> str | None:
    if classification.uid is None:
        return classification.user or None
    return f"{classification.uid}" + (f":{classification.gid}" if classification.gid is not None else "")


# --- pull secrets and platform --------------------------------------------------------------------------


def pull_secret_auths(
    pod: dict[str, Any], get_secret: SecretGetter | None, progress: Progress = lambda message: None
) -> dict[str, Any]:
    """Merged `auths` of the pod's imagePullSecrets; unreadable secrets are skipped with a message."""
    if get_secret is None:
        return {}
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    auths: dict[str, Any] = {}
    for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
        name = ref.get("name")
        if not name:
            continue
        try:
            secret = get_secret(namespace, name)
        except KdebugError as exc:
            progress(f"pull secret {name} not readable ({exc.kind}): registry access without it")
            continue
        for host, entry in auths_from_pull_secret(secret).items():
            auths.setdefault(host, entry)  # the first secret naming a registry wins, as in the kubelet
    return auths


def pod_platform(pod: dict[str, Any], catalog: Catalog, node: dict[str, Any] | None = None) -> str:
    """The node's OS/arch when known (node object, then nodeSelector), else the configured or local one."""
    if catalog.registry.platform:
        return catalog.registry.platform
    info = ((node or {}).get("status") or {}).get("nodeInfo") or {}
    if info.get("architecture"):
        return f"{info.get('operatingSystem') or 'linux'}/{info['architecture']}"
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    if selector.get("kubernetes.io/arch"):
        return f"{selector.get('kubernetes.io/os', 'linux')}/{selector['kubernetes.io/arch']}"
    return default_platform()


def secret_getter(kube_client: KubeApi | None) -> SecretGetter | None:
    """Adapts the kube client to a SecretGetter."""
    if kube_client is None:
        return None
    return lambda namespace, name: kube_client.get(paths.object_path("Secret", namespace, name))


# --- for attach ----------------------------------------------------------------------------------------


def make_registry_client(catalog: Catalog) -> RegistryClient:
    return RegistryClient(settings=catalog.registry, cache=EvidenceCache(cache_dir() / "registry"))


def make_image_chooser(
    config: dict[str, Any],
    registry_client: RegistryClient | Literal[False] | None = None,
    kube_client: KubeApi | None = None,
    image: str | None = None,
) -> Callable[[dict[str, Any], str], ImageChoice]:
    """`choose_image(pod, container_name) -> ImageChoice` for `attach` and `run`: classify the target, then
    choose (`image`, the --image flag, when given: it still runs as the target's user, as `inspect`
    reports); the catalog's BusyBox, or `image`, when classification fails. Every choice goes through
    selection.sent_image (mirrors, then the allowlist: refusals raise PermissionDeniedError).

    `registry_client=None` builds the default one (disk cache, config's registry settings); pass
    `False` to classify from names only.
    """
    catalog = load_catalog(config)
    if image:
        sent_image(image, catalog)  # an --image the allowlist refuses stops before any request
    registry = make_registry_client(catalog) if registry_client is None else (registry_client or None)
    get_secret = secret_getter(kube_client)

    def choose_image(pod: dict[str, Any], container_name: str) -> ImageChoice:
        try:
            return classify_and_choose(pod, container_name)
        except KdebugError as exc:
            if exc.kind == "forbidden":  # the allowlist, or reading a pull secret: not a classification
                raise
            if image:
                return choose_debug_image(Classification(), catalog, "", override_image=image).choice
            return fallback_choice(catalog, exc.message)

    def classify_and_choose(pod: dict[str, Any], container_name: str) -> ImageChoice:
        container = next(
            (c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == container_name),
            {},
        )
        status = next(
            (
                s
                for s in (pod.get("status") or {}).get("containerStatuses") or []
                if s.get("name") == container_name
            ),
            {},
        )
        target_image = container.get("image", "")
        auths = pull_secret_auths(pod, get_secret) if registry is not None else {}
        classification, _ = classify_container_image(
            target_image, status.get("imageID") or None, catalog, registry, pod_platform(pod, catalog), auths
        )
        return choose_debug_image(
            classification, catalog, _upstream_name(target_image, catalog), pod, container_name, image
        ).choice

    return choose_image


def check_override_allowed(config: dict[str, Any], image: str) -> None:
    """For `--image`: the allowlist check (mirrors first) that must happen before any request."""
    sent_image(image, load_catalog(config))
