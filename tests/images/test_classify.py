"""Classification from each evidence tier: reference, config, files (pure; images built in memory)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from kdebug.images.classify import Confidence, ImageKind, classify_image, is_conclusive
from kdebug.images.layers import merge_layers, read_layer
from kdebug_emulator import ocibuild


def evidence_of(
    image: ocibuild.OciImage, reference: str = "acme/app:1", layers: bool = True
) -> dict[str, Any]:
    """What the registry step would hand over, computed from an image in memory."""
    config = json.loads(image.config_bytes)
    files = merge_layers([read_layer(io.BytesIO(layer.blob)) for layer in image.layers]) if layers else None
    return {"reference": reference, "config": config["config"], "history": config["history"], "files": files}


@pytest.mark.parametrize(
    ("reference", "kind", "flavour", "release", "nonroot", "has_shell"),
    [
        ("gcr.io/distroless/static-debian12:nonroot", "distroless", "static", "debian12", True, False),
        ("gcr.io/distroless/base-debian12:debug-nonroot", "distroless", "base", "debian12", True, True),
        ("gcr.io/distroless/java17-debian13:latest", "distroless", "java17", "debian13", False, False),
        ("gcr.io/distroless/static:debug-arm64", "distroless", "static", None, False, True),
        ("cgr.dev/chainguard/nginx:latest", "chainguard", "nginx", None, None, False),
        ("cgr.dev/chainguard/nginx:latest-dev", "chainguard", "nginx", None, None, True),
        ("alpine:3.20", "alpine", None, None, False, True),
        ("busybox", "busybox", None, None, False, True),
        ("ubuntu:24.04", "ubuntu", None, None, False, True),
        ("acme/payments:3", "unknown", None, None, None, None),
    ],
    ids=[
        "distroless static nonroot",
        "distroless debug-nonroot",
        "distroless java debian13",
        "distroless arch-suffixed debug tag",
        "chainguard latest",
        "chainguard latest-dev",
        "alpine",
        "busybox",
        "ubuntu",
        "name says nothing",
    ],
)
def test_reference_alone(
    reference: str,
    kind: str,
    flavour: str | None,
    release: str | None,
    nonroot: bool | None,
    has_shell: bool | None,
) -> None:
    result = classify_image({"reference": reference})
    assert (result.kind.value, result.flavour, result.release, result.nonroot, result.has_shell) == (
        kind,
        flavour,
        release,
        nonroot,
        has_shell,
    )


def test_distroless_nonroot_reference_is_conclusive() -> None:
    assert is_conclusive(classify_image({"reference": "gcr.io/distroless/base-debian12:nonroot"}))


def test_digest_pinned_distroless_reference_leaves_the_user_open() -> None:
    result = classify_image({"reference": "gcr.io/distroless/base-debian12@sha256:" + "0" * 64})
    assert (result.kind, result.nonroot, is_conclusive(result)) == (ImageKind.DISTROLESS, None, False)


def test_chainguard_reference_needs_the_config_for_the_user() -> None:
    assert not is_conclusive(classify_image({"reference": "cgr.dev/chainguard/nginx:latest"}))


@pytest.mark.parametrize(
    ("image", "kind", "flavour", "release", "nonroot", "has_shell", "libc"),
    [
        (ocibuild.scratch_app_image(), "scratch", None, None, False, False, "none"),
        (ocibuild.distroless_image("static"), "distroless", "static", "debian12", False, False, "none"),
        (
            ocibuild.distroless_image("base", nonroot=True),
            "distroless",
            "base",
            "debian12",
            True,
            False,
            "glibc",
        ),
        (
            ocibuild.distroless_image("static", debug=True),
            "distroless",
            "static",
            "debian12",
            False,
            True,
            "none",
        ),
        (
            ocibuild.distroless_image("java", nonroot=True, java_payload=10),
            "distroless",
            "java17",
            "debian12",
            True,
            False,
            "glibc",
        ),
        (ocibuild.distroless_app_image(), "distroless", "base", "debian12", True, False, "glibc"),
        (ocibuild.wolfi_image(), "chainguard", "nginx", None, True, False, "glibc"),
        (ocibuild.wolfi_image(dev=True), "chainguard", "nginx", None, True, True, "glibc"),
        (ocibuild.alpine_image(), "alpine", "3.20.3", None, False, True, "musl"),
        (ocibuild.debian_slim_image(), "debian", "12", None, False, True, "glibc"),
    ],
    ids=[
        "scratch static binary",
        "distroless static",
        "distroless base nonroot",
        "distroless static debug",
        "distroless java nonroot",
        "app built FROM distroless",
        "wolfi",
        "wolfi dev",
        "alpine",
        "debian slim",
    ],
)
def test_files_decide_for_images_whose_name_says_nothing(
    image: ocibuild.OciImage,
    kind: str,
    flavour: str | None,
    release: str | None,
    nonroot: bool,
    has_shell: bool,
    libc: str,
) -> None:
    result = classify_image(evidence_of(image))
    assert (
        result.kind.value,
        result.flavour,
        result.release,
        result.nonroot,
        result.has_shell,
        result.libc,
    ) == (kind, flavour, release, nonroot, has_shell, libc)


def test_files_outrank_a_misleading_name() -> None:
    result = classify_image(evidence_of(ocibuild.scratch_app_image(), reference="alpine:3.20"))
    assert result.kind is ImageKind.SCRATCH


def test_named_user_resolves_through_etc_passwd() -> None:
    result = classify_image(evidence_of(ocibuild.debian_slim_image(app_user="app")))
    assert (result.user, result.uid, result.gid, result.nonroot) == ("app", 1000, 1001, True)


def test_numeric_user_takes_its_group_from_etc_passwd() -> None:
    result = classify_image(evidence_of(ocibuild.distroless_image("base", nonroot=True)))
    assert (result.uid, result.gid) == (65532, 65532)


def test_whiteout_in_an_upper_layer_removes_the_shell_below() -> None:
    result = classify_image(evidence_of(ocibuild.debian_slim_image(app_user="app", drop_bash=True)))
    assert result.shell == "bin/sh"  # bash is gone, dash's sh remains


def test_config_alone_reveals_user_and_java_but_not_the_kind() -> None:
    image = ocibuild.distroless_image("java", nonroot=True, java_payload=10)
    result = classify_image(evidence_of(image, layers=False))
    assert (result.kind, result.flavour, result.nonroot) == (ImageKind.UNKNOWN, "java17", True)


def test_busybox_on_path_in_config_means_a_distroless_debug_image() -> None:
    image = ocibuild.distroless_image("static", debug=True)
    result = classify_image(evidence_of(image, layers=False))
    assert (result.kind, result.has_shell) == (ImageKind.DISTROLESS, True)


def test_chainguard_labels_in_config_name_the_family() -> None:
    result = classify_image(evidence_of(ocibuild.wolfi_image("redis"), layers=False))
    assert (result.kind, result.flavour) == (ImageKind.CHAINGUARD, "redis")


def test_unread_layers_leave_the_shell_unknown_and_lower_the_confidence() -> None:
    image = ocibuild.distroless_image("static")
    files = merge_layers([read_layer(io.BytesIO(image.layers[0].blob)), None])
    result = classify_image({"reference": "acme/app:1", "files": files, "config": {"User": "0"}})
    assert (result.has_shell, result.confidence) == (None, Confidence.MEDIUM)


def test_a_registry_error_becomes_a_warning_and_evidence() -> None:
    result = classify_image({"reference": "acme/app:1", "registry_error": "registry x unreachable: refused"})
    assert result.warnings and "unreachable" in result.warnings[0]


def test_evidence_lists_every_tier_used() -> None:
    image = ocibuild.distroless_image("base", nonroot=True)
    sources = {
        item.source
        for item in classify_image({**evidence_of(image), "image_id": "sha256:" + "1" * 64}).evidence
    }
    assert sources == {"reference", "image_id", "config", "files"}


def test_to_dict_is_json_ready() -> None:
    data = classify_image({"reference": "gcr.io/distroless/static-debian12:nonroot"}).to_dict()
    assert json.loads(json.dumps(data))["kind"] == "distroless"
