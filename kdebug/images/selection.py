"""PURE: classification + catalog + overrides + allowlist -> the debug image, its shell, user and reason.

Order: `--image` (if given) else the first catalog family matching the classification else BusyBox;
then mirror rewrites; then the allowlist (which `--image` must pass too, checked before any request);
then the identity: a non-root target gets a debug container running as its uid and gid.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

from kdebug.errors import PermissionDeniedError, UsageError
from kdebug.images.catalog import AllowRule, Catalog, Family
from kdebug.images.classify import NONROOT_UID, Classification, ImageKind, classify_reference
from kdebug.images.reference import ImageRef, apply_mirrors, parse_image_ref
from kdebug.models import ImageChoice

_ARCH_SUFFIX = re.compile(r"-(amd64|arm64|arm|ppc64le|s390x|386)$")


@dataclass(frozen=True)
class Identity:
    uid: int | None
    gid: int | None
    source: str  # where the uid came from, for the reason


@dataclass(frozen=True)
class Selection:
    choice: ImageChoice
    family: str  # catalog family name, "busybox" or "override"
    warnings: tuple[str, ...] = field(default_factory=tuple)


def choose_debug_image(
    classification: Classification,
    catalog: Catalog,
    target_image: str,
    pod: dict[str, Any] | None = None,
    container_name: str | None = None,
    override_image: str | None = None,
    override_shell: list[str] | None = None,
) -> Selection:
    """The debug image for one target container; PermissionDeniedError if the allowlist refuses it."""
    target = _parse_or_none(target_image)
    if override_image:
        image, shell, reason, family, warnings = _from_override(override_image, override_shell, catalog)
    else:
        image, shell, reason, family, warnings = _from_catalog(classification, catalog, target)
        image = sent_image(image, catalog)
    identity = target_identity(pod or {}, container_name, classification)
    run_as_user, run_as_group, identity_note = _run_as(identity, classification)
    if identity_note:
        reason = f"{reason}; {identity_note}"
    choice = ImageChoice(
        image=image, shell=list(shell), reason=reason, run_as_user=run_as_user, run_as_group=run_as_group
    )
    return Selection(choice=choice, family=family, warnings=tuple(warnings))


def sent_image(image: str, catalog: Catalog) -> str:
    """The one door every debug image goes through: mirror rewrites applied, then the allowlist checked
    on the name that is sent (PermissionDeniedError if it refuses it)."""
    mirrored = str(apply_mirrors(parse_image_ref(image), list(catalog.mirrors)))
    check_allowed(mirrored, catalog.allowed_images)
    return mirrored


def fallback_choice(catalog: Catalog, why: str) -> ImageChoice:
    """The catalog's BusyBox when the target could not be classified (`why`), mirrored and allowed."""
    return ImageChoice(
        image=sent_image(catalog.busybox_image, catalog),
        shell=list(catalog.busybox_shell),
        reason=f"default pinned BusyBox ({why})",
    )


# --- where the image comes from -----------------------------------------------------------------------


def _from_override(
    image: str, shell: list[str] | None, catalog: Catalog
) -> tuple[str, list[str], str, str, list[str]]:
    mirrored = sent_image(image, catalog)  # refused before anything else happens
    if shell is None:
        known = classify_reference(image)
        distroless_debug = known.kind is ImageKind.DISTROLESS and known.has_shell
        shell = ["/busybox/sh"] if distroless_debug else ["sh"]
    return mirrored, shell, f"--image {image} given", "override", []


def _from_catalog(
    classification: Classification, catalog: Catalog, target: ImageRef | None
) -> tuple[str, list[str], str, str, list[str]]:
    for family in catalog.families:
        if family_matches(family, classification, target):
            derived = _derive_from_family(family, classification, target)
            if derived is not None:
                image, reason, warnings = derived
                return image, list(family.shell), reason, family.name, warnings
    return (
        catalog.busybox_image,
        list(catalog.busybox_shell),
        _busybox_reason(classification, catalog),
        "busybox",
        [],
    )


def family_matches(family: Family, classification: Classification, target: ImageRef | None) -> bool:
    wanted = family.match
    if "kind" in wanted and wanted["kind"] != classification.kind.value:
        return False
    if "flavour" in wanted and not fnmatch.fnmatchcase(classification.flavour or "", wanted["flavour"]):
        return False
    if "registry" in wanted and (target is None or target.registry != wanted["registry"]):
        return False
    return not (
        "repository" in wanted
        and (target is None or not fnmatch.fnmatchcase(target.name, wanted["repository"]))
    )


def _derive_from_family(
    family: Family, classification: Classification, target: ImageRef | None
) -> tuple[str, str, list[str]] | None:
    if family.strategy == "image":
        return (
            family.image or "",
            f"{_describe(classification)}: catalog family {family.name} uses {family.image}",
            [],
        )
    base = _family_repository(family, classification, target)
    if base is None:
        return None
    warnings: list[str] = []
    if family.strategy == "tag":
        tag = (family.tag_nonroot if classification.nonroot else family.tag) or family.tag or "debug"
        tag += _arch_suffix(target) if base is target else ""
        variant = f"its {tag} variant"
    else:
        current = target.tag if target is not None and base is target and target.tag else "latest"
        suffix = family.suffix or ""
        tag = current if current.endswith(suffix) else f"{current}{suffix}"
        variant = f"its {tag} variant"
    if target is not None and target.is_pinned:
        warnings.append(
            f"target {target} is pinned by digest; the debug variant {base.name}:{tag} is a tag, not pinned"
        )
    note = f", {family.shell_note}" if family.shell_note else ""
    return str(base.with_tag(tag)), f"{_describe(classification)}: using {variant}{note}", warnings


def _family_repository(
    family: Family, classification: Classification, target: ImageRef | None
) -> ImageRef | None:
    """The target's own repository when its name is the family's, else the upstream one for its flavour."""
    if target is not None and classify_reference(str(target)).kind is classification.kind:
        return target
    if not family.upstream:
        return None
    values = {"flavour": classification.flavour, "release": classification.release or family.default_release}
    if any(f"{{{key}}}" in family.upstream and not value for key, value in values.items()):
        return None
    try:
        return parse_image_ref(family.upstream.format(**values))
    except (KeyError, UsageError):
        return None


def _arch_suffix(target: ImageRef | None) -> str:
    match = _ARCH_SUFFIX.search(target.tag or "") if target else None
    return match.group(0) if match else ""


def _busybox_reason(classification: Classification, catalog: Catalog) -> str:
    busybox = f"using static BusyBox {catalog.busybox_image}"
    if classification.kind is ImageKind.UNKNOWN:
        return f"target image could not be classified: {busybox}"
    if classification.has_shell:
        return f"{_describe(classification)} with its own shell at /{classification.shell}: {busybox} anyway"
    return f"{_describe(classification)}: {busybox}"


def _describe(classification: Classification) -> str:
    parts = [classification.kind.value]
    if classification.kind is ImageKind.DISTROLESS and classification.flavour:
        name = classification.flavour + (f"-{classification.release}" if classification.release else "")
        parts.append(name)
    elif classification.flavour and classification.kind is not ImageKind.SCRATCH:
        parts.append(classification.flavour)
    if classification.nonroot:
        parts.append("nonroot")
    return "target is " + " ".join(parts)


# --- the allowlist ------------------------------------------------------------------------------------


def check_allowed(image: str, rules: tuple[AllowRule, ...] | None) -> None:
    """No allowlist: anything goes; else the repository must match a rule (with a digest if it says so)."""
    if rules is None:
        return
    ref = parse_image_ref(image)
    digest_needed = None
    for rule in rules:
        if _pattern_matches(rule.pattern, ref):
            if not rule.require_digest or ref.is_pinned:
                return
            digest_needed = rule
    if digest_needed is not None:
        raise PermissionDeniedError(
            f"debug image {image} is refused: allowed_images rule {digest_needed.pattern!r} "
            "requires a digest",
            hint=f"pin it: --image {ref.name}@sha256:...",
        )
    patterns = ", ".join(rule.pattern for rule in rules) or "(empty list)"
    raise PermissionDeniedError(
        f"debug image {image} is refused: it matches no allowed_images rule ({patterns})",
        hint="pick an allowed image with --image, or ask whoever manages your kdebug config",
    )


def _pattern_matches(pattern: str, ref: ImageRef) -> bool:
    repository_pattern = pattern.split("@", 1)[0]
    if not any(ch in repository_pattern for ch in "*?["):
        try:
            return parse_image_ref(repository_pattern).name == ref.name
        except UsageError:
            return False
    return fnmatch.fnmatchcase(ref.name, repository_pattern)


# --- who the debug container runs as -------------------------------------------------------------------


def target_identity(
    pod: dict[str, Any], container_name: str | None, classification: Classification
) -> Identity:
    """Container securityContext, then the pod's, then the image config user (uid[:gid])."""
    pod_context = (pod.get("spec") or {}).get("securityContext") or {}
    container_context = _container(pod, container_name).get("securityContext") or {}
    uid = container_context.get("runAsUser", pod_context.get("runAsUser"))
    gid = container_context.get("runAsGroup", pod_context.get("runAsGroup"))
    if uid is not None:
        source = (
            "the container securityContext" if "runAsUser" in container_context else "the pod securityContext"
        )
        if gid is None and classification.uid == uid:
            gid = classification.gid
        return Identity(uid=int(uid), gid=None if gid is None else int(gid), source=source)
    from_config = any(item.source == "config" for item in classification.evidence)
    source = "the image config" if from_config else "the image name"
    return Identity(
        uid=classification.uid, gid=classification.gid if gid is None else int(gid), source=source
    )


def _container(pod: dict[str, Any], name: str | None) -> dict[str, Any]:
    containers = (pod.get("spec") or {}).get("containers") or []
    return next((c for c in containers if c.get("name") == name), {})


def _run_as(identity: Identity, classification: Classification) -> tuple[int | None, int | None, str]:
    if identity.uid is None:
        if classification.nonroot:
            return (
                None,
                None,
                "target runs as a named non-root user kdebug could not resolve: debug container runs as root",
            )
        return None, None, ""
    if identity.uid == 0:
        return None, None, ""
    gid, note = identity.gid, ""
    if (
        gid is None
        and identity.uid == NONROOT_UID
        and classification.kind in (ImageKind.DISTROLESS, ImageKind.CHAINGUARD)
    ):
        gid, note = (
            identity.uid,
            f" (group {identity.uid} assumed: {classification.kind.value} nonroot images use it)",
        )
    group = "" if gid is None else f":{gid}"
    reason = (
        f"runs as {identity.uid}{group} like the target (from {identity.source}){note}, "
        "so /proc/1/root is readable"
    )
    if gid is None:
        reason += "; the target's group is unknown"
    return identity.uid, gid, reason


def _parse_or_none(image: str) -> ImageRef | None:
    try:
        return parse_image_ref(image)
    except UsageError:
        return None
