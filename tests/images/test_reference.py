"""Image references parse and rewrite like Docker's and containerd's."""

from __future__ import annotations

import pytest

from kdebug.errors import UsageError
from kdebug.images.reference import (
    apply_mirrors,
    digest_from_image_id,
    normalize_mirror_rules,
    parse_image_ref,
    undo_mirrors,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("alpine:3.20", "docker.io/library/alpine:3.20"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
        ("index.docker.io/library/nginx", "docker.io/library/nginx:latest"),
        ("gcr.io/distroless/static-debian12:nonroot", "gcr.io/distroless/static-debian12:nonroot"),
        ("localhost/app", "localhost/app:latest"),
        ("127.0.0.1:5000/acme/app:1.0", "127.0.0.1:5000/acme/app:1.0"),
        (f"gcr.io/distroless/base@{DIGEST}", f"gcr.io/distroless/base@{DIGEST}"),
        (f"cgr.dev/chainguard/nginx:latest@{DIGEST}", f"cgr.dev/chainguard/nginx:latest@{DIGEST}"),
    ],
    ids=[
        "bare name",
        "official with tag",
        "hub user repo",
        "index.docker.io alias",
        "gcr tag",
        "localhost",
        "host with port",
        "digest only",
        "tag and digest",
    ],
)
def test_parse_normalizes_like_docker(text: str, expected: str) -> None:
    assert str(parse_image_ref(text)) == expected


@pytest.mark.parametrize(
    "text",
    ["", "Busybox", "busybox:", "busybox@sha256:xyz", "a b", "gcr.io/", "repo:tag:extra"],
    ids=["empty", "uppercase", "empty tag", "bad digest", "space", "no path", "two tags"],
)
def test_parse_rejects_invalid_references_with_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_image_ref(text)


def test_manifest_reference_prefers_the_digest_over_the_tag() -> None:
    assert parse_image_ref(f"nginx:1.27@{DIGEST}").reference == DIGEST


def test_docker_hub_is_fetched_from_registry_1() -> None:
    assert parse_image_ref("busybox").api_host == "registry-1.docker.io"


MIRRORS = normalize_mirror_rules(
    [
        {"from": "gcr.io/distroless", "to": "registry.corp/mirror/distroless"},
        {"from": "docker.io", "to": "registry.corp/hub"},
    ]
)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("gcr.io/distroless/base-debian12:nonroot", "registry.corp/mirror/distroless/base-debian12:nonroot"),
        ("busybox:1.36.1", "registry.corp/hub/library/busybox:1.36.1"),
        ("gcr.io/distroless-fake/app:1", "gcr.io/distroless-fake/app:1"),
        ("quay.io/x/y:1", "quay.io/x/y:1"),
    ],
    ids=["distroless prefix", "docker hub host", "prefix only on a path boundary", "no rule"],
)
def test_mirrors_rewrite_the_longest_prefix_on_a_path_boundary(image: str, expected: str) -> None:
    assert str(apply_mirrors(parse_image_ref(image), MIRRORS)) == expected


def test_mirrors_keep_the_digest() -> None:
    ref = apply_mirrors(parse_image_ref(f"gcr.io/distroless/static@{DIGEST}"), MIRRORS)
    assert ref.digest == DIGEST


def test_undo_mirrors_gives_back_the_upstream_name() -> None:
    mirrored = parse_image_ref("registry.corp/mirror/distroless/static-debian12:nonroot")
    assert str(undo_mirrors(mirrored, MIRRORS)) == "gcr.io/distroless/static-debian12:nonroot"


def test_a_mirror_rule_without_target_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        normalize_mirror_rules([{"from": "gcr.io/distroless"}])


@pytest.mark.parametrize(
    ("image_id", "expected"),
    [
        (DIGEST, DIGEST),
        (f"docker.io/library/busybox@{DIGEST}", DIGEST),
        (f"docker-pullable://busybox@{DIGEST}", DIGEST),
        ("", None),
        ("docker://sha256:nothex", None),
    ],
    ids=["bare digest", "repo digest", "docker-pullable", "empty", "garbage"],
)
def test_digest_from_image_id(image_id: str, expected: str | None) -> None:
    assert digest_from_image_id(image_id) == expected
