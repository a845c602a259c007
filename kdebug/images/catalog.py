"""PURE parsing of the debug image catalog (images/catalog.yaml) and of the user's config sections.

Config sections read here (format in docs/catalog.md):
  catalog:        {busybox: {...}, families: [...]}  user families are tried before the shipped ones
  mirrors:        [{from: gcr.io/distroless, to: registry.corp/mirror/distroless}] (or a mapping); <= 1000
  allowed_images: ["registry.corp/mirror/*", {pattern: "docker.io/library/busybox", require_digest: true}]
  registry:       {insecure: [host:port], timeout: 5, retries: 2, byte_budget: 33554432, platform: os/arch}
`load_catalog` is the one function that reads a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdebug.errors import UsageError
from kdebug.images.reference import normalize_mirror_rules, parse_image_ref
from kdebug.lazy import lazy_module

# load_catalog reads a file: the parser and the file reader load with the first catalog read
yaml = lazy_module("yaml")
yamlfiles = lazy_module("kdebug.yamlfiles")

STRATEGIES = ("tag", "tag_suffix", "image")
DEFAULT_BYTE_BUDGET = 32 * 1024 * 1024
MAX_MIRRORS = 1000  # rules are tried per image, longest prefix first: a few dozen is a large setup
MIRRORS_SHAPE = "a list of {from: PREFIX, to: PREFIX} (or a mapping PREFIX: PREFIX), each a non-empty string"


@dataclass(frozen=True)
class Family:
    name: str
    match: dict[str, str]
    strategy: str
    shell: tuple[str, ...]
    tag: str | None = None
    tag_nonroot: str | None = None
    suffix: str | None = None
    image: str | None = None
    upstream: str | None = None
    default_release: str | None = None
    shell_note: str | None = None


@dataclass(frozen=True)
class AllowRule:
    pattern: str
    require_digest: bool = False


@dataclass(frozen=True)
class RegistrySettings:
    insecure: tuple[str, ...] = ()
    timeout: float = 5.0
    retries: int = 2
    byte_budget: int = DEFAULT_BYTE_BUDGET
    platform: str | None = None  # "os/arch[/variant]"; None: the node's, else this machine's


@dataclass(frozen=True)
class Catalog:
    busybox_image: str
    busybox_shell: tuple[str, ...]
    families: tuple[Family, ...]
    mirrors: tuple[tuple[str, str], ...] = ()
    allowed_images: tuple[AllowRule, ...] | None = None  # None: no allowlist
    registry: RegistrySettings = field(default_factory=RegistrySettings)


def parse_catalog(shipped: dict[str, Any], config: dict[str, Any] | None = None) -> Catalog:
    """The shipped catalog dict merged with the user's config dict; bad shapes are UsageErrors."""
    config = config or {}
    user = _mapping(config.get("catalog"), "catalog")
    busybox = {
        **_mapping(shipped.get("busybox"), "busybox"),
        **_mapping(user.get("busybox"), "catalog.busybox"),
    }
    image = busybox.get("image")
    if not isinstance(image, str):
        raise UsageError("catalog: busybox.image must be an image reference")
    parse_image_ref(image)
    families = [
        parse_family(item, "catalog.families") for item in _list(user.get("families"), "catalog.families")
    ]
    families += [parse_family(item, "families") for item in _list(shipped.get("families"), "families")]
    return Catalog(
        busybox_image=image,
        busybox_shell=_shell(busybox.get("shell", ["sh"]), "busybox.shell"),
        families=tuple(families),
        mirrors=parse_mirrors(config.get("mirrors")),
        allowed_images=parse_allowlist(config.get("allowed_images")),
        registry=parse_registry_settings(_mapping(config.get("registry"), "registry")),
    )


def check_sections(config: dict[str, Any]) -> None:
    """The config sections this module reads, checked for shape without the shipped catalog: so the
    config loader can refuse a bad file (naming it) before anything merges or reads the sections."""
    parse_mirrors(config.get("mirrors"))
    parse_allowlist(config.get("allowed_images"))
    parse_registry_settings(_mapping(config.get("registry"), "registry"))
    user = _mapping(config.get("catalog"), "catalog")
    busybox = _mapping(user.get("busybox"), "catalog.busybox")
    if "image" in busybox:
        if not isinstance(busybox["image"], str):
            raise UsageError("catalog.busybox.image must be an image reference")
        parse_image_ref(busybox["image"])
    if "shell" in busybox:
        _shell(busybox["shell"], "catalog.busybox.shell")
    for item in _list(user.get("families"), "catalog.families"):
        parse_family(item, "catalog.families")


def parse_mirrors(value: Any) -> tuple[tuple[str, str], ...]:
    """`mirrors:` as (from-prefix, to-prefix) pairs, longest prefix first."""
    if value is None:
        return ()
    if isinstance(value, dict):
        entries: list[Any] = [{"from": source, "to": target} for source, target in value.items()]
    elif isinstance(value, list):
        entries = value
    else:
        raise UsageError(f"mirrors: expected {MIRRORS_SHAPE}")
    if len(entries) > MAX_MIRRORS:
        raise UsageError(f"mirrors: {len(entries)} rules, at most {MAX_MIRRORS}")
    for entry in entries:
        if not isinstance(entry, dict):
            raise UsageError(f"mirrors: expected {MIRRORS_SHAPE}")
        if not all(isinstance(entry.get(key), str) and entry[key].strip() for key in ("from", "to")):
            raise UsageError("mirrors: every rule needs both `from` and `to`, each a non-empty string")
    return tuple(normalize_mirror_rules(entries))


def parse_family(item: Any, where: str) -> Family:
    entry = _mapping(item, where)
    name = entry.get("name")
    strategy = entry.get("strategy", "image")
    if not isinstance(name, str) or not name:
        raise UsageError(f"{where}: every family needs a name")
    if strategy not in STRATEGIES:
        raise UsageError(f"{where} {name}: strategy must be one of {', '.join(STRATEGIES)}")
    needed = {"tag": "tag", "tag_suffix": "suffix", "image": "image"}[strategy]
    if not isinstance(entry.get(needed), str):
        raise UsageError(f"{where} {name}: strategy {strategy} needs `{needed}`")
    if strategy == "image":
        parse_image_ref(entry["image"])
    match = _mapping(entry.get("match"), f"{where} {name}.match")
    return Family(
        name=name,
        match={str(k): str(v) for k, v in match.items()},
        strategy=strategy,
        shell=_shell(entry.get("shell", ["sh"]), f"{where} {name}.shell"),
        tag=entry.get("tag"),
        tag_nonroot=entry.get("tag_nonroot"),
        suffix=entry.get("suffix"),
        image=entry.get("image"),
        upstream=entry.get("upstream"),
        default_release=entry.get("default_release"),
        shell_note=entry.get("shell_note"),
    )


def parse_allowlist(value: Any) -> tuple[AllowRule, ...] | None:
    if value is None:
        return None
    rules = []
    for item in _list(value, "allowed_images"):
        if isinstance(item, str):
            rules.append(AllowRule(pattern=item.strip()))
        elif isinstance(item, dict) and isinstance(item.get("pattern"), str):
            rules.append(
                AllowRule(pattern=item["pattern"].strip(), require_digest=bool(item.get("require_digest")))
            )
        else:
            raise UsageError(
                "allowed_images: each entry is a pattern or {pattern: ..., require_digest: true}"
            )
    return tuple(rules)


def parse_registry_settings(section: dict[str, Any]) -> RegistrySettings:
    insecure = _list(section.get("insecure"), "registry.insecure")
    if not all(isinstance(host, str) and host for host in insecure):
        raise UsageError("registry.insecure: expected a list of host:port strings")
    platform = section.get("platform")
    if platform is not None and not isinstance(platform, str):
        raise UsageError("registry.platform: expected os/arch, e.g. linux/amd64")
    return RegistrySettings(
        insecure=tuple(insecure),
        timeout=_number(section, "timeout", 5.0),
        retries=int(_number(section, "retries", 2)),
        byte_budget=int(_number(section, "byte_budget", DEFAULT_BYTE_BUDGET)),
        platform=platform,
    )


def _number(section: dict[str, Any], key: str, default: float) -> float:
    """A finite number of 0 or more (or a string of one): bool is an int to Python, and NaN or
    infinity would make every deadline and budget meaningless."""
    value = section.get(key, default)
    number = None
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number < 0:
        raise UsageError(f"registry.{key} must be a number (0 or more)")
    return number


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise UsageError(f"{where}: expected a list")
    return value


def _shell(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not value or not all(isinstance(part, str) for part in value):
        raise UsageError(f"{where}: expected a command, e.g. [sh]")
    return tuple(value)


def shipped_catalog_path() -> Path:
    """images/catalog.yaml: inside the package when installed from a wheel, at the repo root when editable."""
    packaged = Path(__file__).parent / "catalog.yaml"
    return packaged if packaged.exists() else Path(__file__).parents[2] / "images" / "catalog.yaml"


def load_catalog(config: dict[str, Any] | None = None, path: Path | None = None) -> Catalog:
    path = path or shipped_catalog_path()
    try:
        shipped = yamlfiles.load_file(path) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read the debug image catalog {path}: {exc}") from None
    return parse_catalog(shipped, config)
