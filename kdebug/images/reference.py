"""PURE: parse and normalize container image references the way Docker and containerd do.

`busybox` is `docker.io/library/busybox:latest`; a first component with a dot, a colon or the
name `localhost` is a registry host. Mirror rewrites replace a repository prefix on a path boundary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from kdebug.errors import UsageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Fa-f0-9]{32,}$")
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9-]+)*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$"
)


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """registry/repository, the unit that mirrors and allowlists talk about."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What goes in /v2/<repo>/manifests/<reference>: the digest when pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def is_pinned(self) -> bool:
        return self.digest is not None

    @property
    def basename(self) -> str:
        return self.repository.rsplit("/", 1)[-1]

    def with_tag(self, tag: str) -> ImageRef:
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> ImageRef:
        return replace(self, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image_ref(text: str) -> ImageRef:
    """Parse `[host[:port]/]path[:tag][@digest]`, filling Docker's defaults; bad input is a UsageError."""
    original = text
    text = text.strip()
    if not text or any(ch.isspace() for ch in text):
        raise UsageError(f"invalid image reference {original!r}")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise UsageError(f"invalid image reference {original!r}: bad digest {digest!r}")
    tag = None
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, tag = text.rsplit(":", 1)
        if not _TAG.match(tag):
            raise UsageError(f"invalid image reference {original!r}: bad tag {tag!r}")
    registry, path = _split_registry(text)
    if not path or not all(_COMPONENT.match(part) for part in path.split("/")):
        raise UsageError(
            f"invalid image reference {original!r}: repository must be lowercase a-z, 0-9, . _ -"
        )
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageRef(registry=registry, repository=path, tag=tag, digest=digest)


def _split_registry(text: str) -> tuple[str, str]:
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if not _HOST.match(first):
            raise UsageError(f"invalid image reference {text!r}: bad registry host {first!r}")
        host = first.lower()
        if host in ("index.docker.io", "registry-1.docker.io"):
            host = DOCKER_HUB
        return host, rest
    return DOCKER_HUB, text


def normalize_mirror_rules(
    rules: Iterable[Mapping[str, str]] | Mapping[str, str] | None,
) -> list[tuple[str, str]]:
    """Config mirrors as (from-prefix, to-prefix) pairs, longest prefix first; accepts a mapping or a list."""
    if not rules:
        return []
    pairs: list[tuple[str, str]] = []
    items = (
        rules.items() if isinstance(rules, Mapping) else ((r.get("from", ""), r.get("to", "")) for r in rules)
    )
    for source, target in items:
        if not source or not target:
            raise UsageError("config mirrors: every rule needs both `from` and `to`")
        pairs.append((_normalize_prefix(source), _normalize_prefix(target)))
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


def _normalize_prefix(prefix: str) -> str:
    prefix = prefix.strip().rstrip("/")
    registry, path = _split_registry(prefix) if "/" in prefix else (_split_registry(prefix + "/x")[0], "")
    if registry == DOCKER_HUB and path and "/" not in path and "." not in prefix.split("/")[0]:
        path = f"library/{path}"
    return f"{registry}/{path}" if path else registry


def apply_mirrors(ref: ImageRef, mirrors: list[tuple[str, str]]) -> ImageRef:
    """Rewrite the first (longest) matching prefix on a path boundary; tag and digest are kept."""
    name = ref.name
    for source, target in mirrors:
        if name == source or name.startswith(source + "/"):
            rewritten = target + name[len(source) :]
            host, _, path = rewritten.partition("/")
            return ImageRef(registry=host, repository=path, tag=ref.tag, digest=ref.digest)
    return ref


def digest_from_image_id(image_id: str | None) -> str | None:
    """`status.containerStatuses[].imageID` comes as `sha256:..`, `repo@sha256:..` or `docker-pullable://..`."""
    if not image_id:
        return None
    candidate = image_id.rsplit("@", 1)[-1]
    if "://" in candidate:
        candidate = candidate.split("://", 1)[1]
    return candidate if _DIGEST.match(candidate) else None


def undo_mirrors(ref: ImageRef, mirrors: list[tuple[str, str]]) -> ImageRef:
    """The upstream name of a mirrored reference (for classification by name); unchanged if no rule fits."""
    reverse = sorted(
        ((target, source) for source, target in mirrors), key=lambda pair: len(pair[0]), reverse=True
    )
    return apply_mirrors(ref, reverse)
