"""Read a tar(.gz) layer stream for the few paths that tell images apart, and merge layers like overlayfs.

A layer is read once, front to back (`tarfile` stream mode), keeping entry metadata for the paths
that matter and the text of a few small files. Layers may be read out of order (smallest first),
so each layer's result is kept separately and `merge_layers` applies them in their real order:
`.wh.NAME` hides NAME of lower layers, `.wh..wh..opq` hides a directory's lower contents.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from kdebug.lazy import lazy_module

if TYPE_CHECKING:
    import tarfile
else:  # only reading a layer needs it: a classification served from the cache does not
    tarfile = lazy_module("tarfile")


WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
MAX_TEXT_BYTES = 64 * 1024

# Paths whose text is kept (small files only).
TEXT_PATHS = (
    "etc/os-release",
    "usr/lib/os-release",
    "etc/alpine-release",
    "etc/debian_version",
    "etc/passwd",
    "etc/group",
    "etc/lsb-release",
)
# Paths whose existence (and type/link target) is kept.
MARKER_PATTERNS = (
    "bin/sh",
    "bin/bash",
    "bin/ash",
    "bin/dash",
    "bin/busybox",
    "usr/bin/sh",
    "usr/bin/bash",
    "usr/bin/busybox",
    "busybox/sh",
    "busybox/busybox",
    "sbin/apk",
    "usr/bin/apt",
    "var/lib/dpkg/status",
    "var/lib/dpkg/status.d/*",
    "lib/apk/db/installed",
    "usr/lib/apk/db/installed",
    "var/lib/chisel/manifest.wall",
    "lib/ld-musl-*",
    "lib/ld-linux*",
    "lib64/ld-linux*",
    "lib/*-linux-gnu/libc.so.6",
    "usr/lib/*-linux-gnu/libc.so.6",
    "lib/libc.so.6",
    "usr/lib/libc.so.6",
    "usr/lib/jvm/*",
    "nodejs/bin/node",
    "usr/bin/node",
    "usr/bin/python3*",
    "usr/bin/java",
)


@dataclass
class LayerFiles:
    """What one layer contributes: kept entries, kept text, whiteouts, opaque directories, entry count."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    whiteouts: list[str] = field(default_factory=list)
    opaque_dirs: list[str] = field(default_factory=list)
    regular_files: int = 0
    executables: list[str] = field(default_factory=list)


def clean_path(name: str) -> str:
    while name.startswith(("./", "/")):
        name = name[1:] if name.startswith("/") else name[2:]
    return "" if name == "." else name.rstrip("/")


def is_interesting(path: str) -> bool:
    return path in TEXT_PATHS or any(fnmatch.fnmatchcase(path, pattern) for pattern in MARKER_PATTERNS)


def read_layer(stream: IO[bytes], compressed: bool = True) -> LayerFiles:
    """Read one layer stream; raises tarfile.TarError / OSError (and the budget error of the stream)."""
    result = LayerFiles()
    mode = "r|gz" if compressed else "r|"
    with tarfile.open(fileobj=stream, mode=mode) as archive:
        for member in archive:
            _record_member(archive, member, result)
    return result


def _record_member(archive: tarfile.TarFile, member: tarfile.TarInfo, result: LayerFiles) -> None:
    path = clean_path(member.name)
    if not path:
        return
    directory, _, base = path.rpartition("/")
    if base == OPAQUE_MARKER:
        result.opaque_dirs.append(directory)
        return
    if base.startswith(WHITEOUT_PREFIX):
        hidden = base[len(WHITEOUT_PREFIX) :]
        result.whiteouts.append(f"{directory}/{hidden}" if directory else hidden)
        return
    if member.isreg():
        result.regular_files += 1
        if member.mode & 0o111 and len(result.executables) < 20:
            result.executables.append(path)
    if not is_interesting(path):
        return
    result.entries[path] = _entry_metadata(member)
    if path in TEXT_PATHS and member.isreg() and member.size <= MAX_TEXT_BYTES:
        handle = archive.extractfile(member)
        if handle is not None:
            result.texts[path] = handle.read().decode("utf-8", errors="replace")


def _entry_metadata(member: tarfile.TarInfo) -> dict[str, Any]:
    if member.issym():
        return {"type": "symlink", "target": member.linkname}
    if member.islnk():
        return {"type": "hardlink", "target": clean_path(member.linkname)}
    if member.isdir():
        return {"type": "dir"}
    return {"type": "file", "size": member.size, "mode": member.mode}


def merge_layers(layers: list[LayerFiles | None]) -> dict[str, Any]:
    """Apply layers bottom to top (None = not read); returns the files part of the classification evidence."""
    entries: dict[str, dict[str, Any]] = {}
    texts: dict[str, str] = {}
    regular_files = 0
    executables: list[str] = []
    for layer in layers:
        if layer is None:
            continue
        for directory in layer.opaque_dirs:
            _hide(entries, texts, directory, keep_self=True)
        for hidden in layer.whiteouts:
            _hide(entries, texts, hidden, keep_self=False)
        entries.update(layer.entries)
        texts.update(layer.texts)
        regular_files += layer.regular_files
        executables.extend(layer.executables)
    return {
        "entries": entries,
        "texts": texts,
        "regular_files": regular_files,
        "executables": executables[:20],
        "layers_read": sum(1 for layer in layers if layer is not None),
        "layers_total": len(layers),
        "complete": all(layer is not None for layer in layers),
    }


def _hide(entries: dict[str, Any], texts: dict[str, str], path: str, keep_self: bool) -> None:
    prefix = f"{path}/" if path else ""
    for store in (entries, texts):
        for name in [n for n in store if n.startswith(prefix) or (not keep_self and n == path)]:
            del store[name]
