"""`kdebug attach` takes its debug image from the catalog; --image wins after the allowlist check."""

from __future__ import annotations

import pytest

from kdebug.errors import ExitCode
from kdebug.images.catalog import load_catalog
from tests.fixtures.kdebug_cli import ephemeral_containers

DEFAULT_DEBUG_IMAGE = load_catalog({}).busybox_image  # the shipped catalog's pinned BusyBox

DISTROLESS_DEBUG = "gcr.io/distroless/base-debian12:debug-nonroot"


def test_scratch_target_gets_busybox(demo_emulator, kubeconfig, run_kdebug):
    result = run_kdebug("attach", "web", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == 0, result.err
    (container,) = ephemeral_containers(demo_emulator, "demo", "web")
    assert container["image"] == DEFAULT_DEBUG_IMAGE
    assert f"debug image {DEFAULT_DEBUG_IMAGE}: " in result.err


def test_distroless_nonroot_target_gets_its_debug_variant_as_65532(demo_emulator, kubeconfig, run_kdebug):
    result = run_kdebug("attach", "api", "--kubeconfig", str(kubeconfig), "--", "true")
    assert result.code == 0, result.err
    (container,) = ephemeral_containers(demo_emulator, "demo", "api")
    assert container["image"] == DISTROLESS_DEBUG
    security = container["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (65532, 65532)


def test_distroless_debug_shell_is_busybox_sh(demo_emulator, kubeconfig, run_kdebug):
    # stdout not a terminal, no COMMAND: the image's own shell reads stdin (here: /dev/null)
    result = run_kdebug("attach", "api", "--kubeconfig", str(kubeconfig))
    assert result.code == 0, result.err
    (container,) = ephemeral_containers(demo_emulator, "demo", "api")
    assert container["command"] == ["/busybox/sh"]


def test_banner_says_why_the_image_was_chosen(kubeconfig, run_kdebug):
    result = run_kdebug("attach", "api", "--kubeconfig", str(kubeconfig), "--", "true")
    assert f"debug image {DISTROLESS_DEBUG}: target is distroless base-debian12 nonroot" in result.err


def test_image_flag_wins_over_the_catalog(demo_emulator, kubeconfig, run_kdebug):
    result = run_kdebug(
        "attach", "api", "--kubeconfig", str(kubeconfig), "--image", DEFAULT_DEBUG_IMAGE, "--", "true"
    )
    assert result.code == 0, result.err
    (container,) = ephemeral_containers(demo_emulator, "demo", "api")
    assert container["image"] == DEFAULT_DEBUG_IMAGE


def test_image_outside_the_allowlist_is_refused_before_any_request(
    demo_emulator, kubeconfig, run_kdebug, write_config
):
    write_config({"allowed_images": ["registry.corp/mirror/*"]})
    before = len(demo_emulator.requests)
    result = run_kdebug(
        "attach", "web", "--kubeconfig", str(kubeconfig), "--image", "docker.io/evil/tools:1", "--", "true"
    )
    assert result.code == ExitCode.PERMISSION_DENIED
    assert len(demo_emulator.requests) == before


# -- every choice goes through the mirrors and the allowlist (selection.sent_image) ----------------

MIRRORS = [{"from": "docker.io", "to": "registry.corp/mirror"}]
MIRRORED_BUSYBOX = "registry.corp/mirror/library/busybox:1.36.1"
TARGET = {
    "metadata": {"name": "web", "namespace": "demo"},
    "spec": {"containers": [{"name": "app", "image": "registry.kdebug.test/demo/web:1.0"}]},
}


def chooser(config: dict, image: str | None = None):
    from kdebug.images.inspection import make_image_chooser

    return make_image_chooser(config, registry_client=False, image=image)


def test_image_flag_is_sent_mirrored(demo_emulator, kubeconfig, run_kdebug, write_config):
    write_config({"mirrors": MIRRORS})
    run_kdebug(
        "attach", "web", "--kubeconfig", str(kubeconfig), "--image", DEFAULT_DEBUG_IMAGE, "--timeout", "3s",
        "--", "true",
    )  # fmt: skip
    (container,) = ephemeral_containers(demo_emulator, "demo", "web")
    assert container["image"] == MIRRORED_BUSYBOX  # whether or not the mirror can be pulled


def test_image_flag_for_run_is_mirrored() -> None:
    assert chooser({"mirrors": MIRRORS}, image=DEFAULT_DEBUG_IMAGE)(TARGET, "app").image == MIRRORED_BUSYBOX


def test_fallback_busybox_is_mirrored_when_classification_fails(monkeypatch) -> None:
    from kdebug.errors import KdebugError
    from kdebug.images import inspection

    def broken(*args, **kwargs):
        raise KdebugError("registry answered nonsense")

    monkeypatch.setattr(inspection, "classify_container_image", broken)
    choice = chooser({"mirrors": MIRRORS})(TARGET, "app")

    assert (choice.image, choice.reason) == (
        MIRRORED_BUSYBOX,
        "default pinned BusyBox (registry answered nonsense)",
    )


def test_allowlist_checks_the_mirrored_name_that_is_sent() -> None:
    from kdebug.errors import PermissionDeniedError

    allowed = {"mirrors": MIRRORS, "allowed_images": ["registry.corp/mirror/*"]}
    assert chooser(allowed, image=DEFAULT_DEBUG_IMAGE)(TARGET, "app").image == MIRRORED_BUSYBOX
    with pytest.raises(
        PermissionDeniedError, match=r"debug image docker\.io/library/busybox:1\.36\.1 is refused"
    ):
        chooser({"allowed_images": ["registry.corp/mirror/*"]}, image=DEFAULT_DEBUG_IMAGE)
