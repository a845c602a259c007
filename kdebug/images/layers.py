"""Read a tar(.gz) layer stream for the few paths that tell images apart, and merge layers like overlayfs.

A layer is read once, front to back (`tarfile` stream mode), keeping entry metadata for the paths
that matter and the text of a few small files. A layer is the registry's word: its expanded size and
its tar headers (PAX records, GNU long names) are capped, so a gzip bomb costs bounded time and memory.
Layers may be read out of order (smallest first), so each layer's result is kept separately and
`merge_layers` applies them in their real order: `.wh.NAME` hides NAME of lower layers,
`.wh..wh..opq` hides a directory's lower contents.
"""

from __future__ import annotations

import fnmatch
import zlib
from collections.abc import Callable
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
# Expanded bytes per layer: 16 times its compressed size, at least 64 MiB, at most 1 GiB. Real layers
# expand 2-5x; a gzip of zeros expands 1000x.
EXPANSION_RATIO = 16
MIN_EXPANDED_CAP = 64 * 1024 * 1024
MAX_EXPANDED_CAP = 1024 * 1024 * 1024
# A PAX header or GNU long name is read whole into memory by tarfile; real ones are a few hundred bytes.
MAX_TAR_HEADER_BYTES = 1024 * 1024
READ_CHUNK = 64 * 1024

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


class LayerCapError(Exception):
    """A layer went past a cap (expanded size, tar header size): the rest of it is not read."""


def expanded_cap(compressed_size: int) -> int:
    return min(MAX_EXPANDED_CAP, max(MIN_EXPANDED_CAP, EXPANSION_RATIO * compressed_size))


class _Inflated:
    """gzip members inflated as tarfile asks, never more than `limit` bytes in all, `READ_CHUNK` at a time."""

    def __init__(self, raw: IO[bytes], limit: int, inflater: Callable[[], Any]):
        self.raw = raw
        self.limit = limit
        self.new_inflater = inflater
        self.inflater = inflater()
        self.expanded = 0

    def read(self, size: int = -1) -> bytes:
        want = size if size and size > 0 else READ_CHUNK
        while True:
            data = self.inflater.unconsumed_tail
            if not data and self.inflater.eof:  # the next gzip member, if any
                data = self.inflater.unused_data or self.raw.read(READ_CHUNK)
                if not data:
                    return b""
                self.inflater = self.new_inflater()
            elif not data:
                data = self.raw.read(READ_CHUNK)
                if not data:
                    return b""
            out = self.inflater.decompress(data, want)
            if out:
                self.expanded += len(out)
                if self.expanded > self.limit:
                    raise LayerCapError(f"layer expands to more than {self.limit} bytes")
                return out


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


def read_layer(
    stream: IO[bytes], compressed: bool = True, max_expanded: int = MIN_EXPANDED_CAP
) -> LayerFiles:
    """Read one layer stream; raises tarfile.TarError / OSError / zlib.error (and the stream's budget
    error), LayerCapError past `max_expanded` inflated bytes or a tar header over MAX_TAR_HEADER_BYTES."""
    header_types = (
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    )

    class BoundedTarInfo(tarfile.TarInfo):
        def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
            # tarfile reads these headers' whole payload into memory before looking at it
            if self.type in header_types and self.size > MAX_TAR_HEADER_BYTES:
                raise LayerCapError(f"a tar header of {self.size} bytes")
            return super()._proc_member(archive)  # type: ignore[misc]

    result = LayerFiles()
    source: IO[bytes] | _Inflated = (
        _Inflated(stream, max_expanded, lambda: zlib.decompressobj(zlib.MAX_WBITS | 16))
        if compressed
        else stream
    )
    with tarfile.open(fileobj=source, mode="r|", tarinfo=BoundedTarInfo) as archive:  # type: ignore[arg-type]
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
