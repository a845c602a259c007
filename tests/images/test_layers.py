"""Layer reading: interesting paths, symlinks, whiteouts and opaque directories, out-of-order merging."""

from __future__ import annotations

import io

from kdebug.images.layers import merge_layers, read_layer
from kdebug_emulator.ocibuild import Entry, build_layer


def read(entries: list[Entry]):  # noqa: ANN201 (LayerFiles)
    return read_layer(io.BytesIO(build_layer(entries).blob))


def test_symlinks_keep_their_target() -> None:
    layer = read([Entry("bin/sh", kind="symlink", target="/bin/busybox")])
    assert layer.entries["bin/sh"] == {"type": "symlink", "target": "/bin/busybox"}


def test_small_text_files_are_kept() -> None:
    layer = read([Entry("etc/os-release", b'ID="alpine"\n')])
    assert layer.texts["etc/os-release"] == 'ID="alpine"\n'


def test_uninteresting_files_are_counted_not_kept() -> None:
    layer = read([Entry("srv/data.bin", b"x" * 100)])
    assert (layer.entries, layer.regular_files) == ({}, 1)


def test_whiteout_hides_a_lower_file() -> None:
    lower = read([Entry("bin/bash", b"elf", 0o755)])
    upper = read([Entry("bin/.wh.bash")])
    assert "bin/bash" not in merge_layers([lower, upper])["entries"]


def test_opaque_directory_hides_lower_contents_but_keeps_its_own() -> None:
    lower = read([Entry("var/lib/dpkg/status.d/libc6", b"Package: libc6\n")])
    upper = read([Entry("var/lib/dpkg/status.d/.wh..wh..opq"), Entry("var/lib/dpkg/status.d/tzdata", b"x")])
    entries = merge_layers([lower, upper])["entries"]
    assert sorted(p for p in entries if p.startswith("var/lib/dpkg/status.d/")) == [
        "var/lib/dpkg/status.d/tzdata"
    ]


def test_merge_applies_layers_in_their_order_not_the_reading_order() -> None:
    lower = read([Entry("etc/os-release", b'ID="debian"\n')])
    upper = read([Entry("etc/os-release", b'ID="ubuntu"\n')])
    assert merge_layers([lower, upper])["texts"]["etc/os-release"] == 'ID="ubuntu"\n'


def test_unread_layer_marks_the_result_incomplete() -> None:
    merged = merge_layers([read([Entry("app", b"x")]), None])
    assert (merged["complete"], merged["layers_read"], merged["layers_total"]) == (False, 1, 2)
