"""PURE: evidence about an image -> Classification (kind, flavour, release, user, shell, confidence, why).

Evidence is a plain dict, cheapest tier first:
  reference      the image as the pod names it (mirror rewrites undone: the upstream name)
  image_id       status.containerStatuses[].imageID
  config         the image config's `config` section (User, Env, Entrypoint, Cmd, Labels) or None
  history        the image config's `history` list or None
  files          kdebug.images.layers.merge_layers(...) output or None
  registry_error why the registry could not be asked, or None
Each tier only fills what earlier tiers left unknown, except files, which outrank names (most production
images are built FROM a base and renamed). `is_conclusive` tells the caller when to stop asking.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from kdebug.errors import UsageError
from kdebug.images.reference import DOCKER_HUB, ImageRef, parse_image_ref

NONROOT_UID = 65532


class ImageKind(StrEnum):
    SCRATCH = "scratch"
    DISTROLESS = "distroless"
    CHAINGUARD = "chainguard"
    ALPINE = "alpine"
    DEBIAN = "debian"
    UBUNTU = "ubuntu"
    BUSYBOX = "busybox"
    OTHER = "other"
    UNKNOWN = "unknown"


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class Evidence:
    source: str  # reference | image_id | config | files | registry
    detail: str


@dataclass(frozen=True)
class Classification:
    kind: ImageKind = ImageKind.UNKNOWN
    flavour: str | None = None
    release: str | None = None  # the distroless/Debian release, e.g. "debian12"
    variant: str | None = None  # the tag family: latest, nonroot, debug, debug-nonroot, latest-dev
    nonroot: bool | None = None  # the image runs as a non-root user
    user: str | None = None  # the image config's user as written, or inferred from the name
    uid: int | None = None
    gid: int | None = None
    has_shell: bool | None = None
    shell: str | None = None  # path of the shell found
    libc: str | None = None  # glibc | musl | none
    confidence: Confidence = Confidence.LOW
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["confidence"] = self.confidence.value
        data["evidence"] = [asdict(item) for item in self.evidence]
        data["warnings"] = list(self.warnings)
        return data


_ARCH_SUFFIX = re.compile(r"-(amd64|arm64|arm|ppc64le|s390x|386)$")
_DISTROLESS_NAME = re.compile(r"^(?P<flavour>[a-z0-9-]+?)(?:-(?P<release>debian\d+))?$")
_OFFICIAL_WITH_SHELL = {
    "alpine": ImageKind.ALPINE,
    "debian": ImageKind.DEBIAN,
    "ubuntu": ImageKind.UBUNTU,
    "busybox": ImageKind.BUSYBOX,
}
SHELL_PATHS = ("bin/sh", "bin/bash", "usr/bin/sh", "usr/bin/bash", "bin/ash", "bin/dash", "busybox/sh")


def classify_image(evidence: dict[str, Any]) -> Classification:
    """Combine every tier present in `evidence` into one verdict."""
    result = classify_reference(evidence.get("reference"))
    if evidence.get("image_id"):
        result = _add(result, Evidence("image_id", f"running digest {evidence['image_id']}"))
    if evidence.get("registry_error"):
        result = _with_registry_error(result, str(evidence["registry_error"]))
    if evidence.get("config") is not None:
        result = apply_config(result, evidence["config"], evidence.get("history") or [])
    if evidence.get("files") is not None:
        result = apply_files(result, evidence["files"])
    return finalize(result)


def is_conclusive(result: Classification) -> bool:
    """Kind, shell and user all known: asking the registry further would change nothing."""
    return (
        result.kind not in (ImageKind.UNKNOWN, ImageKind.OTHER)
        and result.has_shell is not None
        and result.nonroot is not None
        # a renamed distroless image needs its flavour to name the upstream debug variant
        and (result.kind is not ImageKind.DISTROLESS or result.flavour is not None)
    )


# --- tier 1: the reference --------------------------------------------------------------------------


def classify_reference(reference: str | None) -> Classification:
    if not reference:
        return Classification()
    try:
        ref = parse_image_ref(reference)
    except UsageError:
        return Classification(evidence=(Evidence("reference", f"{reference!r} is not a valid reference"),))
    if ref.registry == "gcr.io" and ref.repository.startswith("distroless/"):
        return _distroless_from_reference(ref)
    if ref.registry == "cgr.dev":
        return _chainguard_from_reference(ref)
    if ref.registry == DOCKER_HUB and ref.repository.startswith("library/"):
        kind = _OFFICIAL_WITH_SHELL.get(ref.basename)
        if kind is not None:
            shell = "bin/sh"
            return Classification(
                kind=kind,
                has_shell=True,
                shell=shell,
                nonroot=False,
                user="",
                uid=0,
                gid=0,
                libc="musl" if kind is ImageKind.ALPINE else None,
                confidence=Confidence.MEDIUM,
                evidence=(
                    Evidence(
                        "reference", f"{ref.name} is the official {kind.value} image (root, has a shell)"
                    ),
                ),
            )
    return Classification(evidence=(Evidence("reference", f"{ref.name} says nothing about its base"),))


def _distroless_from_reference(ref: ImageRef) -> Classification:
    match = _DISTROLESS_NAME.match(ref.basename)
    flavour = match.group("flavour") if match else ref.basename
    release = match.group("release") if match else None
    tag = _ARCH_SUFFIX.sub("", ref.tag) if ref.tag else None
    evidence = [Evidence("reference", f"{ref.name} is a distroless repository")]
    result = Classification(
        kind=ImageKind.DISTROLESS, flavour=flavour, release=release, confidence=Confidence.MEDIUM
    )
    if tag is None or ref.is_pinned:
        evidence.append(
            Evidence("reference", "pinned by digest: the variant (nonroot, debug) is not in the name")
        )
        if tag is None:
            return replace(result, evidence=tuple(evidence))
    nonroot = "nonroot" in tag
    debug = tag.startswith("debug")
    evidence.append(
        Evidence(
            "reference",
            f"tag {tag!r}: {'nonroot' if nonroot else 'root'}, "
            f"{'BusyBox shell at /busybox/sh' if debug else 'no shell'}",
        )
    )
    return replace(
        result,
        variant=tag,
        nonroot=nonroot,
        has_shell=debug,
        shell="busybox/sh" if debug else None,
        user=str(NONROOT_UID) if nonroot else "0",
        uid=NONROOT_UID if nonroot else 0,
        gid=None if nonroot else 0,
        confidence=Confidence.HIGH,
        evidence=tuple(evidence),
    )


def _chainguard_from_reference(ref: ImageRef) -> Classification:
    tag = ref.tag
    evidence = [Evidence("reference", f"{ref.name} is a Chainguard repository")]
    result = Classification(kind=ImageKind.CHAINGUARD, flavour=ref.basename, confidence=Confidence.MEDIUM)
    if tag is None:
        return replace(result, evidence=tuple(evidence))
    dev = tag == "latest-dev" or tag.endswith("-dev")
    evidence.append(
        Evidence("reference", f"tag {tag!r}: {'-dev variant with a shell' if dev else 'no shell'}")
    )
    return replace(
        result, variant=tag, has_shell=dev, shell="bin/sh" if dev else None, evidence=tuple(evidence)
    )


def _with_registry_error(result: Classification, error: str) -> Classification:
    note = f"registry not consulted: {error}; classified from weaker evidence"
    return replace(
        result, evidence=(*result.evidence, Evidence("registry", error)), warnings=(*result.warnings, note)
    )


# --- tier 2: the image config -----------------------------------------------------------------------


def apply_config(
    result: Classification, config: dict[str, Any], history: list[dict[str, Any]]
) -> Classification:
    env = _env_map(config.get("Env") or [])
    labels = config.get("Labels") or {}
    entrypoint = list(config.get("Entrypoint") or [])
    user = config.get("User") or ""
    result = _add(result, Evidence("config", f"user {user!r}" if user else "user not set (root)"))
    result = replace(result, user=user, nonroot=None, uid=None, gid=None)
    result = _apply_user(result, user, passwd=None)
    if any(key.startswith("dev.chainguard.") for key in labels):
        title = labels.get("dev.chainguard.image.title") or labels.get("dev.chainguard.package.main")
        result = _set_kind(
            result,
            ImageKind.CHAINGUARD,
            title or result.flavour,
            Evidence("config", "Chainguard labels (dev.chainguard.*)"),
        )
    path_dirs = env.get("PATH", "").split(":")
    if "/busybox" in path_dirs or entrypoint[:1] == ["/busybox/sh"]:
        result = replace(result, has_shell=True, shell="busybox/sh")
        result = _add(
            result, Evidence("config", "/busybox on PATH or entrypoint: a distroless debug variant")
        )
        if result.kind is ImageKind.UNKNOWN:
            result = replace(result, kind=ImageKind.DISTROLESS)
    if "JAVA_VERSION" in env or entrypoint[:1] == ["/usr/bin/java"]:
        result = _add(result, Evidence("config", "java runtime (JAVA_VERSION or /usr/bin/java entrypoint)"))
        if result.flavour is None or result.kind is not ImageKind.DISTROLESS:
            result = replace(result, flavour=_java_flavour(env.get("JAVA_VERSION")))
    if _built_without_run_steps(history) and result.kind is ImageKind.UNKNOWN:
        result = _add(result, Evidence("config", "history has no RUN steps (Bazel/apko style build)"))
    return result


def _env_map(env: list[str]) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in env if "=" in item)
    return {key: value for key, value in pairs}


def _java_flavour(version: str | None) -> str:
    major = re.match(r"(\d+)", version or "")
    return f"java{major.group(1)}" if major else "java"


def _built_without_run_steps(history: list[dict[str, Any]]) -> bool:
    return bool(history) and not any("RUN" in str(step.get("created_by", "")) for step in history)


def _apply_user(
    result: Classification, user: str, passwd: dict[str, tuple[int, int]] | None
) -> Classification:
    """`uid[:gid]` or `name[:group]` -> uid/gid where they can be known; root is uid 0."""
    name, _, group = user.partition(":")
    uid = _resolve_id(name, passwd, 0)
    gid = _resolve_id(group, passwd, 1) if group else None
    if gid is None and uid is not None and not group and passwd:
        # the runtime takes the primary group from /etc/passwd, by name or by uid
        by_uid = {entry_uid: entry_gid for entry_uid, entry_gid in passwd.values()}
        gid = passwd[name][1] if name in passwd else by_uid.get(uid)
    if not name:
        uid, gid = 0, 0
    nonroot = None if uid is None else uid != 0
    if uid is None and name and name != "root":
        nonroot = True  # a named user that is not root, whatever its number
    return replace(result, uid=uid, gid=gid, nonroot=nonroot)


def _resolve_id(value: str, passwd: dict[str, tuple[int, int]] | None, index: int) -> int | None:
    if value.isdigit():
        return int(value)
    if value == "root":
        return 0
    if passwd and value in passwd:
        return passwd[value][index]
    return None


# --- tier 3: the files ------------------------------------------------------------------------------


def apply_files(result: Classification, files: dict[str, Any]) -> Classification:
    entries: dict[str, Any] = files.get("entries") or {}
    texts: dict[str, str] = files.get("texts") or {}
    complete = bool(files.get("complete"))
    os_release = parse_os_release(texts.get("etc/os-release") or texts.get("usr/lib/os-release") or "")
    status_d = sorted(_dpkg_status_d_packages(entries))
    result = _kind_from_files(result, entries, os_release, status_d, complete)
    result = _shell_from_files(result, entries, complete)
    result = replace(result, libc=_libc_from_files(entries, complete) or result.libc)
    passwd = parse_passwd(texts.get("etc/passwd", ""))
    if passwd and result.user is not None:
        result = _apply_user(result, result.user, passwd)
    if not complete:
        read, total = files.get("layers_read", 0), files.get("layers_total", 0)
        result = _add(result, Evidence("files", f"read {read} of {total} layers (byte budget)"))
    return result


def _kind_from_files(
    result: Classification,
    entries: dict[str, Any],
    os_release: dict[str, str],
    status_d: list[str],
    complete: bool,
) -> Classification:
    os_id = os_release.get("ID", "").lower()
    pretty = os_release.get("PRETTY_NAME", "")
    version = os_release.get("VERSION_ID", "")
    if pretty == "Distroless" or (status_d and "var/lib/dpkg/status" not in entries):
        release = f"debian{version.split('.')[0]}" if version else result.release
        flavour = _distroless_flavour(entries, status_d, result.flavour)
        detail = (
            f"/etc/os-release PRETTY_NAME={pretty!r}" if pretty else "packages in /var/lib/dpkg/status.d/"
        )
        return _set_kind(result, ImageKind.DISTROLESS, flavour, Evidence("files", detail), release=release)
    if os_id in ("wolfi", "chainguard"):
        return _set_kind(
            result, ImageKind.CHAINGUARD, result.flavour, Evidence("files", f"/etc/os-release ID={os_id}")
        )
    if os_id == "alpine" or "etc/alpine-release" in entries:
        return _set_kind(
            result, ImageKind.ALPINE, version or None, Evidence("files", "/etc/os-release ID=alpine")
        )
    if os_id in ("debian", "ubuntu"):
        kind = ImageKind.DEBIAN if os_id == "debian" else ImageKind.UBUNTU
        detail = f"/etc/os-release ID={os_id}" + (
            ", chiseled" if "var/lib/chisel/manifest.wall" in entries else ""
        )
        return _set_kind(result, kind, version or None, Evidence("files", detail))
    if os_id:
        return _set_kind(result, ImageKind.OTHER, os_id, Evidence("files", f"/etc/os-release ID={os_id}"))
    if "bin/busybox" in entries:
        return _set_kind(result, ImageKind.BUSYBOX, None, Evidence("files", "/bin/busybox, no os-release"))
    if complete:
        return _set_kind(
            result,
            ImageKind.SCRATCH,
            None,
            Evidence("files", "no /etc/os-release and no package database in any layer"),
        )
    return _add(result, Evidence("files", "no os-release in the layers read"))


def _distroless_flavour(entries: dict[str, Any], packages: list[str], fallback: str | None) -> str:
    paths = entries.keys()
    if any(p.startswith("usr/lib/jvm/") for p in paths) or any(p.startswith("openjdk") for p in packages):
        return fallback if fallback and fallback.startswith("java") else "java"
    if "nodejs/bin/node" in entries:
        return fallback if fallback and fallback.startswith("nodejs") else "nodejs"
    if any(p.startswith("usr/bin/python3") for p in paths) or any(p.startswith("python3") for p in packages):
        return "python3"
    if fallback and fallback.startswith("java"):
        return fallback
    if any(p.startswith("libstdc++") for p in packages):
        return "cc"
    if any(p.startswith("libssl") for p in packages):
        return "base"
    if "libc6" in packages:
        return "base-nossl"
    return "static"


def _dpkg_status_d_packages(entries: dict[str, Any]) -> set[str]:
    prefix = "var/lib/dpkg/status.d/"
    names = (path[len(prefix) :] for path in entries if path.startswith(prefix))
    return {name.removesuffix(".md5sums") for name in names if name and "/" not in name}


def _shell_from_files(result: Classification, entries: dict[str, Any], complete: bool) -> Classification:
    found = next((path for path in SHELL_PATHS if path in entries), None)
    if found:
        return _add(replace(result, has_shell=True, shell=found), Evidence("files", f"shell at /{found}"))
    if complete:
        return _add(replace(result, has_shell=False, shell=None), Evidence("files", "no shell in any layer"))
    return result


def _libc_from_files(entries: dict[str, Any], complete: bool) -> str | None:
    paths = list(entries)
    if any(p.startswith("lib/ld-musl-") for p in paths):
        return "musl"
    if any(p.endswith("libc.so.6") or "/ld-linux" in f"/{p}" for p in paths):
        return "glibc"
    return "none" if complete else None


def parse_os_release(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key] = value.strip().strip('"').strip("'")
    return values


def parse_passwd(text: str) -> dict[str, tuple[int, int]]:
    users: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[2].isdigit() and parts[3].isdigit():
            users[parts[0]] = (int(parts[2]), int(parts[3]))
    return users


# --- combining ---------------------------------------------------------------------------------------


def _set_kind(
    result: Classification,
    kind: ImageKind,
    flavour: str | None,
    evidence: Evidence,
    release: str | None = None,
) -> Classification:
    return _add(
        replace(
            result, kind=kind, flavour=flavour, release=release or result.release, confidence=Confidence.HIGH
        ),
        evidence,
    )


def _add(result: Classification, evidence: Evidence) -> Classification:
    return replace(result, evidence=(*result.evidence, evidence))


def finalize(result: Classification) -> Classification:
    """Fill what follows from the rest: the variant name; lower the confidence when facts are missing."""
    if result.kind is ImageKind.DISTROLESS and result.variant is None and result.has_shell is not None:
        variant = (
            ("debug" if result.has_shell else "latest")
            if not result.nonroot
            else ("debug-nonroot" if result.has_shell else "nonroot")
        )
        result = replace(result, variant=variant)
    if result.kind is ImageKind.UNKNOWN:
        return replace(result, confidence=Confidence.LOW)
    if result.has_shell is None or result.nonroot is None:
        return replace(result, confidence=min(result.confidence, Confidence.MEDIUM, key=_confidence_rank))
    return result


def _confidence_rank(value: Confidence) -> int:
    return {Confidence.LOW: 0, Confidence.MEDIUM: 1, Confidence.HIGH: 2}[value]
