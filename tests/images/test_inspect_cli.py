"""`kdebug inspect` end to end: the real CLI entry point against the emulator (and a real registry)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdebug.cli.main import main
from kdebug.debug.spec import idle_guarded
from kdebug.errors import ExitCode
from kdebug.images.catalog import load_catalog
from kdebug.images.inspection import classify_container_image
from kdebug.images.reference import parse_image_ref
from kdebug.images.registry import RegistryClient
from kdebug_emulator import ocibuild
from tests.images.registries import basic_auths, needs_registry, unused_port

TOP_KEYS = {"apiVersion", "kind", "pod", "platform", "target", "containers", "security"}
CONTAINER_KEYS = {
    "name",
    "target",
    "image",
    "imageID",
    "digest",
    "classification",
    "hasShell",
    "user",
    "registry",
    "debugImage",
}


def write_config(home: Path, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    path = home / "kdebug-config.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KDEBUG_CONFIG", str(path))


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main(["inspect", *args, "-o", "json"])
    out = capsys.readouterr().out
    assert code == 0
    return json.loads(out)


def test_json_has_the_documented_shape(kube, isolated_home, capsys) -> None:
    report = run_json(capsys, "api", "-n", "demo", "--no-registry")
    assert set(report) == TOP_KEYS and all(set(c) == CONTAINER_KEYS for c in report["containers"])


def test_distroless_nonroot_demo_pod_gets_the_debug_nonroot_variant(kube, isolated_home, capsys) -> None:
    target = run_json(capsys, "api", "-n", "demo", "--no-registry")["containers"][0]
    debug = target["debugImage"]
    assert (
        target["target"],
        target["classification"]["kind"],
        debug["image"],
        debug["runAsUser"],
        debug["runAsGroup"],
    ) == (True, "distroless", "gcr.io/distroless/base-debian12:debug-nonroot", 65532, 65532)


def test_spec_is_the_ephemeral_container_attach_would_send(kube, isolated_home, capsys) -> None:
    report = run_json(capsys, "api", "-n", "demo", "--no-registry", "--spec")
    spec = report["spec"]
    assert (spec["image"], spec["command"], spec["targetContainerName"], spec["securityContext"]) == (
        "gcr.io/distroless/base-debian12:debug-nonroot",
        idle_guarded(["/busybox/sh"]),  # attach's interactive shell runs behind the idle watchdog
        "app",
        # api runs as 65532:65532: auto picks the least privilege, `restricted` as the target's ids,
        # even in the privileged demo namespace (see docs/security.md)
        {
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "allowPrivilegeEscalation": False,
            "seccompProfile": {"type": "RuntimeDefault"},
            "runAsUser": 65532,
            "runAsGroup": 65532,
        },
    )


def test_inspect_changes_nothing_in_the_cluster(kube, isolated_home, capsys) -> None:
    before = kube.get("/api/v1/namespaces/demo/pods/api")
    run_json(capsys, "api", "-n", "demo", "--no-registry", "--spec")
    after = kube.get("/api/v1/namespaces/demo/pods/api")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_yaml_output_parses_to_the_same_document(kube, isolated_home, capsys) -> None:
    assert main(["inspect", "api", "-n", "demo", "--no-registry", "-o", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["kind"] == "Inspection"


def test_table_goes_to_stdout_and_marks_the_target(kube, isolated_home, capsys) -> None:
    assert main(["inspect", "api", "-n", "demo", "--no-registry"]) == 0
    out = capsys.readouterr().out
    assert "app (target)" in out and "debug-nonroot" in out.replace("\n", "").replace("│", "").replace(
        " ", ""
    )


def test_unknown_output_format_is_a_usage_error(kube, isolated_home, capsys) -> None:
    assert main(["inspect", "api", "-n", "demo", "-o", "xml"]) == ExitCode.USAGE
    assert "--output must be one of table, json, yaml" in capsys.readouterr().err


def test_allowlist_refuses_image_before_any_request(isolated_home, tmp_path, monkeypatch, capsys) -> None:
    dead = tmp_path / "dead-kubeconfig"  # any request would fail with UNREACHABLE instead
    dead.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "clusters": [{"name": "x", "cluster": {"server": f"http://127.0.0.1:{unused_port()}"}}],
                "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
                "users": [{"name": "x", "user": {}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(dead))
    write_config(isolated_home, {"allowed_images": ["registry.corp/*"]}, monkeypatch)
    code = main(["inspect", "web", "-n", "demo", "--image", "nicolaka/netshoot:v0.13"])
    err = capsys.readouterr().err
    assert (code, "matches no allowed_images rule (registry.corp/*)" in err) == (
        ExitCode.PERMISSION_DENIED,
        True,
    )


@needs_registry
def test_demo_scratch_app_is_classified_from_the_registry_alone(
    kube, registry, isolated_home, monkeypatch, capsys
) -> None:
    ocibuild.push_demo_images(registry.url)
    write_config(isolated_home, ocibuild.demo_mirror_config(registry.url), monkeypatch)
    target = run_json(capsys, "web", "-n", "demo")["containers"][0]
    assert (
        target["classification"]["kind"],
        target["registry"]["consulted"],
        target["hasShell"],
        target["debugImage"]["image"],
    ) == ("scratch", True, False, "docker.io/library/busybox:1.36.1")


@needs_registry
def test_unreachable_registry_still_exits_zero_with_the_reason(
    kube, isolated_home, monkeypatch, capsys
) -> None:
    port = unused_port()
    write_config(
        isolated_home, {"mirrors": [{"from": "registry.kdebug.test", "to": f"127.0.0.1:{port}"}]}, monkeypatch
    )
    target = run_json(capsys, "web", "-n", "demo")["containers"][0]
    assert "unreachable" in target["registry"]["error"] and target["classification"]["warnings"]


@needs_registry
def test_pull_secret_from_the_cluster_opens_a_private_registry(
    kube, emulator, auth_registry, isolated_home, capsys
) -> None:
    ref = parse_image_ref(f"{auth_registry.host}/private/api:7")
    client = RegistryClient(docker_auths=basic_auths(auth_registry.host))
    ocibuild.push_image(client, ref, ocibuild.distroless_image("base", nonroot=True), "7")
    payload = base64.b64encode(json.dumps({"auths": basic_auths(auth_registry.host)}).encode()).decode()
    # the cluster's objects are the test's setup, made in-process: kdebug itself only reads them
    emulator.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "regcred", "namespace": "default"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": payload},
        }
    )
    emulator.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "private", "namespace": "default"},
            "spec": {
                "imagePullSecrets": [{"name": "regcred"}],
                "containers": [{"name": "api", "image": str(ref)}],
            },
        }
    )
    target = run_json(capsys, "private", "-n", "default")["containers"][0]
    assert (target["registry"]["error"], target["classification"]["kind"], target["debugImage"]["image"]) == (
        None,
        "distroless",
        "gcr.io/distroless/base-debian12:debug-nonroot",
    )


@needs_registry
def test_demo_with_a_distroless_mirror_chooses_a_debug_image_the_registry_holds(
    kube, registry, isolated_home, monkeypatch, capsys
) -> None:
    ocibuild.push_demo_images(registry.url)
    write_config(
        isolated_home, ocibuild.demo_mirror_config(registry.url, mirror_distroless=True), monkeypatch
    )
    target = run_json(capsys, "api", "-n", "demo")["containers"][0]
    chosen = target["debugImage"]["image"]
    assert (target["classification"]["kind"], chosen) == (
        "distroless",
        f"{registry.host}/distroless/base-debian12:debug-nonroot",
    )
    verdict, info = classify_container_image(
        chosen, None, load_catalog({}), RegistryClient(docker_auths={}), "linux/amd64"
    )
    assert (info["error"], verdict.has_shell, verdict.nonroot) == (None, True, True)
