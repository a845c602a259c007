"""PURE: the emulator's image table, i.e. which references it can "pull" and what their config says.

Known images follow their real configs (entrypoint, user, env, shell) closely enough for kdebug's
classification and for the process runtime to decide what to run. Digests are derived from the
normalised reference, so they are stable across runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SSL_CERT_FILE = "/etc/ssl/certs/ca-certificates.crt"
NONROOT_UID = "65532"


@dataclass(frozen=True)
class ImageInfo:
    ref: str
    entrypoint: list[str]
    cmd: list[str]
    user: str
    env: dict[str, str]
    shell: str | None  # e.g. "/busybox/sh", "/bin/sh" or None
    working_dir: str = "/"
    digest: str = field(default="")

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", digest_for(self.ref))


def digest_for(ref: str) -> str:
    """A deterministic fake manifest digest for a reference (same image, same digest)."""
    return "sha256:" + hashlib.sha256(normalize_ref(ref).encode()).hexdigest()


def split_digest(ref: str) -> tuple[str, str | None]:
    """`name@sha256:abc` -> (`name`, `sha256:abc`); a digest pins content, the name says what it is."""
    name, sep, digest = ref.partition("@")
    return (name, digest) if sep else (ref, None)


def normalize_ref(ref: str) -> str:
    """Docker Hub shorthand to its full form: `busybox` -> `docker.io/library/busybox:latest`."""
    name, digest = split_digest(ref)
    first, slash, _rest = name.partition("/")
    has_registry = bool(slash) and ("." in first or ":" in first or first == "localhost")
    if not has_registry:
        name = ("docker.io/" if slash else "docker.io/library/") + name
    if not _has_tag(name) and digest is None:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def _has_tag(name: str) -> bool:
    return ":" in name.rsplit("/", 1)[-1]


def image_id_for(info: ImageInfo) -> str:
    """What a container status shows as imageID: `docker.io/library/busybox@sha256:...`."""
    name, _ = split_digest(normalize_ref(info.ref))
    repo = name.rsplit(":", 1)[0] if _has_tag(name) else name
    return f"{repo}@{info.digest}"


# --- default images -------------------------------------------------------------------------------

_DISTROLESS = re.compile(
    r"^gcr\.io/distroless/(?P<family>[a-z0-9-]+?)-(?P<debian>debian1[23])"
    r":(?P<tag>latest|nonroot|debug|debug-nonroot)(?:-(?:amd64|arm64))?$"
)
_DISTROLESS_FAMILIES = {
    "static",
    "base",
    "base-nossl",
    "cc",
    "java-base",
    "java17",
    "java21",
    "java25",
    "python3",
    "nodejs20",
    "nodejs22",
    "nodejs24",
    "nodejs26",
}
_CHAINGUARD = re.compile(r"^cgr\.dev/chainguard/(?P<name>[a-z0-9._-]+):(?P<tag>latest|latest-dev)$")
_SHELL_DISTROS = re.compile(r"^docker\.io/library/(?P<name>busybox|alpine|debian|ubuntu):[\w][\w.-]*$")
DEMO_WEB = "registry.kdebug.test/demo/web:1.0"


def default_image(ref: str) -> ImageInfo | None:
    """The built-in table: what `ref` resolves to, or None when the emulator cannot pull it."""
    name, digest = split_digest(ref)
    full = normalize_ref(name)
    info = _distroless(full) or _chainguard(full) or _shell_distro(full) or _demo(full)
    if info is None:
        return None
    return ImageInfo(
        ref=ref,
        entrypoint=info.entrypoint,
        cmd=info.cmd,
        user=info.user,
        env=info.env,
        shell=info.shell,
        working_dir=info.working_dir,
        digest=digest or digest_for(name),
    )


def _distroless(full: str) -> ImageInfo | None:
    match = _DISTROLESS.match(full)
    if not match or match["family"] not in _DISTROLESS_FAMILIES:
        return None
    family, tag = match["family"], match["tag"]
    nonroot = tag.endswith("nonroot")
    debug = tag.startswith("debug")
    env = {"PATH": DEFAULT_PATH + (":/busybox" if debug else ""), "SSL_CERT_FILE": SSL_CERT_FILE}
    entrypoint = _distroless_runtime_entrypoint(family, match["debian"], env)
    if debug and not entrypoint:
        entrypoint = ["/busybox/sh"]  # language debug images keep their runtime entrypoint
    return ImageInfo(
        ref=full,
        entrypoint=entrypoint,
        cmd=[],
        user=NONROOT_UID if nonroot else "0",
        env=env,
        shell="/busybox/sh" if debug else None,
        working_dir="/home/nonroot" if nonroot else "/",
    )


def _distroless_runtime_entrypoint(family: str, debian: str, env: dict[str, str]) -> list[str]:
    if family.startswith("java") and family != "java-base":
        env["JAVA_VERSION"] = family.removeprefix("java")
        return ["/usr/bin/java", "-jar"]
    if family == "python3":
        env["LANG"] = "C.UTF-8"
        return ["/usr/bin/python3.11" if debian == "debian12" else "/usr/bin/python3.13"]
    if family.startswith("nodejs"):
        return ["/nodejs/bin/node"]
    return []


def _chainguard(full: str) -> ImageInfo | None:
    match = _CHAINGUARD.match(full)
    if not match:
        return None
    dev = match["tag"] == "latest-dev"
    return ImageInfo(
        ref=full,
        entrypoint=["/bin/sh", "-l"] if dev else [],
        cmd=[],
        user="0" if match["name"] == "wolfi-base" else NONROOT_UID,
        env={"PATH": DEFAULT_PATH, "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"},
        shell="/bin/sh" if dev else None,
    )


def _shell_distro(full: str) -> ImageInfo | None:
    match = _SHELL_DISTROS.match(full)
    if not match:
        return None
    shell_cmd = ["bash"] if match["name"] in ("debian", "ubuntu") else ["sh"]
    return ImageInfo(
        ref=full, entrypoint=[], cmd=shell_cmd, user="0", env={"PATH": DEFAULT_PATH}, shell="/bin/sh"
    )


def _demo(full: str) -> ImageInfo | None:
    if full != DEMO_WEB:
        return None
    return ImageInfo(ref=full, entrypoint=["/web"], cmd=[], user="0", env={"PATH": DEFAULT_PATH}, shell=None)


class ImageTable:
    """The default images plus any added ones; added images win over defaults."""

    def __init__(
        self,
        extra: Iterable[ImageInfo] = (),
        mirrors: dict[str, str] | None = None,
        digests: dict[str, str] | None = None,
    ) -> None:
        self._added: dict[str, ImageInfo] = {}
        # ref -> manifest digest of images that really exist in a registry (the demo's), so pod
        # statuses carry the digest a registry can be asked about.
        self._digests = {normalize_ref(ref): digest for ref, digest in (digests or {}).items()}
        # local repository prefix -> upstream prefix: a mirrored name is known when its upstream is
        # (like a node whose runtime pulls gcr.io/distroless through a registry mirror).
        self._mirrors = dict(mirrors or {})
        for info in extra:
            self.add(info)

    def add(self, info: ImageInfo) -> None:
        self._added[normalize_ref(split_digest(info.ref)[0])] = info

    def lookup(self, ref: str) -> ImageInfo | None:
        """None means the emulator cannot pull `ref`."""
        name, _digest = split_digest(ref.strip())
        if not name:
            return None
        added = self._added.get(normalize_ref(name))
        if added is not None:
            return added
        known = self._known(ref)
        digest = self._digests.get(normalize_ref(name))
        if known is not None and digest:
            known = dataclasses.replace(known, digest=digest)
        return known

    def _known(self, ref: str) -> ImageInfo | None:
        known = default_image(ref.strip())
        if known is None:
            upstream = self._upstream_of(ref.strip())
            known = self._known(upstream) if upstream else None
            if known is not None:
                known = dataclasses.replace(known, ref=ref.strip())
        return known

    def _upstream_of(self, ref: str) -> str | None:
        for local, upstream in self._mirrors.items():
            if ref.startswith(local.rstrip("/") + "/"):
                return upstream.rstrip("/") + ref[len(local.rstrip("/")) :]
        return None
