"""Debug image choice: catalog families, mirrors, overrides, the allowlist, the debugger's identity (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from kdebug.errors import PermissionDeniedError
from kdebug.images.catalog import load_catalog
from kdebug.images.classify import Classification, ImageKind, classify_image
from kdebug.images.selection import choose_debug_image
from tests.fixtures.pods import build_pod

BUSYBOX = "docker.io/library/busybox:1.36.1"
DIGEST = "sha256:" + "cd" * 32


def choose(
    image: str,
    config: dict[str, Any] | None = None,
    pod: dict[str, Any] | None = None,
    classification: Classification | None = None,
    **kwargs: Any,
) -> Any:
    catalog = load_catalog(config or {})
    verdict = classification or classify_image({"reference": image})
    return choose_debug_image(verdict, catalog, image, pod, "app", **kwargs)


def make_pod(
    pod_context: dict[str, Any] | None = None, container_context: dict[str, Any] | None = None
) -> dict:
    return build_pod(
        typed=False,
        name="p",
        namespace="n",
        image="x",
        security_context=pod_context or {},
        container_security_context=container_context,
    )


@pytest.mark.parametrize(
    ("target", "image", "shell"),
    [
        (
            "gcr.io/distroless/static-debian12:latest",
            "gcr.io/distroless/static-debian12:debug",
            ["/busybox/sh"],
        ),
        (
            "gcr.io/distroless/base-debian12:nonroot",
            "gcr.io/distroless/base-debian12:debug-nonroot",
            ["/busybox/sh"],
        ),
        (
            "gcr.io/distroless/cc-debian13:latest-arm64",
            "gcr.io/distroless/cc-debian13:debug-arm64",
            ["/busybox/sh"],
        ),
        ("cgr.dev/chainguard/nginx:latest", "cgr.dev/chainguard/nginx:latest-dev", ["/bin/sh"]),
        ("alpine:3.20", BUSYBOX, ["sh"]),
        ("busybox:1.37", BUSYBOX, ["sh"]),
        ("acme/payments:3", BUSYBOX, ["sh"]),
    ],
    ids=[
        "distroless latest -> debug",
        "distroless nonroot -> debug-nonroot keeps the release",
        "arch suffix kept",
        "chainguard latest -> latest-dev",
        "alpine -> busybox",
        "busybox -> busybox",
        "unknown -> busybox",
    ],
)
def test_catalog_choice(target: str, image: str, shell: list[str]) -> None:
    choice = choose(target).choice
    assert (choice.image, choice.shell) == (image, shell)


def test_scratch_gets_the_pinned_busybox() -> None:
    choice = choose(
        "acme/app:1", classification=Classification(kind=ImageKind.SCRATCH, has_shell=False)
    ).choice
    assert choice.image == BUSYBOX and "scratch" in choice.reason


def test_a_target_with_a_shell_is_told_so_in_the_reason() -> None:
    assert "its own shell" in choose("alpine:3.20").choice.reason


def test_reason_for_distroless_nonroot_names_the_variant_and_the_shell() -> None:
    reason = choose("gcr.io/distroless/base-debian12:nonroot").choice.reason
    assert reason.startswith(
        "target is distroless base-debian12 nonroot: using its debug-nonroot variant, BusyBox at /busybox/sh"
    )


def test_digest_pinned_distroless_gets_the_debug_tag_and_a_warning() -> None:
    selection = choose(f"gcr.io/distroless/static-debian12@{DIGEST}")
    assert selection.choice.image == "gcr.io/distroless/static-debian12:debug"
    assert "not pinned" in selection.warnings[0]


def test_distroless_found_under_another_name_uses_the_upstream_repository() -> None:
    verdict = Classification(
        kind=ImageKind.DISTROLESS, flavour="base", release="debian12", nonroot=True, uid=65532
    )
    assert (
        choose("acme/app:1", classification=verdict).choice.image
        == "gcr.io/distroless/base-debian12:debug-nonroot"
    )


def test_mirrors_apply_to_the_catalog_choice() -> None:
    config = {"mirrors": [{"from": "gcr.io/distroless", "to": "registry.corp/mirror/distroless"}]}
    image = choose("gcr.io/distroless/static-debian12:nonroot", config).choice.image
    assert image == "registry.corp/mirror/distroless/static-debian12:debug-nonroot"


def test_user_family_wins_over_the_shipped_ones() -> None:
    config = {
        "catalog": {
            "families": [
                {
                    "name": "corp-tools",
                    "match": {"kind": "alpine"},
                    "strategy": "image",
                    "image": "registry.corp/tools/netshoot:1",
                    "shell": ["bash"],
                }
            ]
        }
    }
    choice = choose("alpine:3.20", config).choice
    assert (choice.image, choice.shell) == ("registry.corp/tools/netshoot:1", ["bash"])


def test_user_can_repin_busybox() -> None:
    config = {"catalog": {"busybox": {"image": "registry.corp/busybox:1.37.0"}}}
    assert choose("acme/app:1", config).choice.image == "registry.corp/busybox:1.37.0"


def test_override_image_wins_over_the_catalog() -> None:
    choice = choose(
        "gcr.io/distroless/static-debian12:nonroot", override_image="nicolaka/netshoot:v0.13"
    ).choice
    assert (choice.image, choice.reason.split(";")[0]) == (
        "docker.io/nicolaka/netshoot:v0.13",
        "--image nicolaka/netshoot:v0.13 given",
    )


def test_override_with_a_distroless_debug_image_gets_its_busybox_shell() -> None:
    choice = choose("acme/app:1", override_image="gcr.io/distroless/base-debian12:debug").choice
    assert choice.shell == ["/busybox/sh"]


@pytest.mark.parametrize(
    ("allowed", "override", "message_part"),
    [
        (["registry.corp/*"], "nicolaka/netshoot:v0.13", "matches no allowed_images rule (registry.corp/*)"),
        (
            [{"pattern": "docker.io/nicolaka/netshoot", "require_digest": True}],
            "nicolaka/netshoot:v0.13",
            "requires a digest",
        ),
    ],
    ids=["repository not allowed", "digest required"],
)
def test_allowlist_refuses_the_override_naming_the_rule(
    allowed: list[Any], override: str, message_part: str
) -> None:
    with pytest.raises(PermissionDeniedError) as caught:
        choose("acme/app:1", {"allowed_images": allowed}, override_image=override)
    assert message_part in caught.value.message


def test_allowlist_accepts_a_pinned_override_when_digests_are_required() -> None:
    allowed = [{"pattern": "docker.io/nicolaka/netshoot", "require_digest": True}]
    choice = choose(
        "acme/app:1", {"allowed_images": allowed}, override_image=f"nicolaka/netshoot@{DIGEST}"
    ).choice
    assert choice.image.endswith(DIGEST)


def test_allowlist_checks_the_catalog_choice_too() -> None:
    with pytest.raises(PermissionDeniedError):
        choose("acme/app:1", {"allowed_images": ["registry.corp/*"]})


def test_allowlist_sees_the_mirrored_name() -> None:
    config = {"mirrors": {"docker.io": "registry.corp/hub"}, "allowed_images": ["registry.corp/*"]}
    assert choose("acme/app:1", config).choice.image == "registry.corp/hub/library/busybox:1.36.1"


@pytest.mark.parametrize(
    ("pod", "verdict", "expected"),
    [
        (make_pod({"runAsUser": 1000, "runAsGroup": 2000}), Classification(), (1000, 2000)),
        (
            make_pod({"runAsUser": 1000, "runAsGroup": 2000}, {"runAsUser": 3000}),
            Classification(),
            (3000, 2000),
        ),
        (
            make_pod(),
            Classification(kind=ImageKind.OTHER, user="1001:1002", uid=1001, gid=1002, nonroot=True),
            (1001, 1002),
        ),
        (
            make_pod(),
            Classification(kind=ImageKind.DISTROLESS, user="65532", uid=65532, nonroot=True),
            (65532, 65532),
        ),
        (
            make_pod(),
            Classification(kind=ImageKind.DEBIAN, user="", uid=0, gid=0, nonroot=False),
            (None, None),
        ),
    ],
    ids=[
        "pod securityContext",
        "container over pod",
        "image config uid:gid",
        "distroless bare 65532 -> group 65532",
        "root target: no override",
    ],
)
def test_debugger_runs_as_the_target(pod: dict, verdict: Classification, expected: tuple) -> None:
    choice = choose("acme/app:1", pod=pod, classification=verdict).choice
    assert (choice.run_as_user, choice.run_as_group) == expected


def test_assumed_group_is_said_in_the_reason() -> None:
    verdict = Classification(
        kind=ImageKind.DISTROLESS, flavour="static", user="65532", uid=65532, nonroot=True
    )
    assert "group 65532 assumed" in choose("acme/app:1", pod=make_pod(), classification=verdict).choice.reason


def test_unknown_group_of_another_image_is_left_unset_and_said() -> None:
    verdict = Classification(kind=ImageKind.OTHER, user="1001", uid=1001, nonroot=True)
    choice = choose("acme/app:1", pod=make_pod(), classification=verdict).choice
    assert (choice.run_as_group, "group is unknown" in choice.reason) == (None, True)
