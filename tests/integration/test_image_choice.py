"""`kdebug attach` takes its debug image from the catalog; --image wins after the allowlist check."""

from __future__ import annotations

from kdebug.errors import ExitCode
from kdebug.models import DEFAULT_DEBUG_IMAGE
from tests.integration.conftest import ephemeral_containers

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
