"""The demo cluster's objects and the `kdebug demo` command (a real subprocess, real signals)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from kdebug_emulator.demo import API_IMAGE, SHOP_IMAGE, WEB_IMAGE


def _pods(emu):
    return {p["metadata"]["name"]: p for p in emu.list("pods", "demo")}


def test_demo_has_web_and_api_pods(demo_emulator):
    pods = _pods(demo_emulator)
    assert pods["web"]["spec"]["containers"][0]["image"] == WEB_IMAGE
    assert pods["api"]["spec"]["containers"][0]["image"] == API_IMAGE
    assert pods["api"]["spec"]["securityContext"] == {
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "runAsNonRoot": True,
    }


def test_demo_pods_all_reach_running(demo_emulator):
    demo_emulator.wait_for(
        lambda: {p["status"]["phase"] for p in _pods(demo_emulator).values()} == {"Running"}
    )


def test_shop_pods_are_owned_by_the_replicaset_which_is_owned_by_the_deployment(demo_emulator):
    deployment = demo_emulator.get("deployments", "demo", "shop")
    (rs,) = demo_emulator.list("replicasets", "demo")
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"shop-{pod_hash}"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == deployment["metadata"]["uid"]
    assert rs["metadata"]["ownerReferences"][0]["controller"] is True
    shop = [p for name, p in _pods(demo_emulator).items() if name.startswith("shop-")]
    assert len(shop) == 2
    for pod in shop:
        assert pod["metadata"]["name"].startswith(f"shop-{pod_hash}-")
        assert len(pod["metadata"]["name"]) == len(f"shop-{pod_hash}-") + 5
        assert pod["metadata"]["labels"] == {"app": "shop", "pod-template-hash": pod_hash}
        owner = pod["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "ReplicaSet",
            rs["metadata"]["uid"],
            True,
        )
        assert pod["spec"]["containers"][0]["image"] == SHOP_IMAGE


def test_shop_deployment_reports_two_ready_replicas(demo_emulator):
    deployment = demo_emulator.get("deployments", "demo", "shop")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["status"]["readyReplicas"] == 2


def test_demo_images_are_known_to_the_image_table():
    from kdebug_emulator.demo import DEMO_IMAGES
    from kdebug_emulator.images import ImageTable

    table = ImageTable()
    assert all(table.lookup(ref) is not None for ref in DEMO_IMAGES)


# --- the command ------------------------------------------------------------------------------------


def _demo(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "kdebug"), "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def served(tmp_path):
    kubeconfig = tmp_path / "demo.kubeconfig"
    process = _demo("--write-kubeconfig", str(kubeconfig))
    line = process.stdout.readline()  # returns once the demo is serving (or the process died)
    yield process, kubeconfig, line
    if process.poll() is None:
        process.terminate()  # the demo's clean stop; SIGKILL only if it hangs
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def test_demo_prints_exactly_one_export_line(served):
    process, kubeconfig, line = served
    assert line == f"export KUBECONFIG={kubeconfig}\n"
    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=30)
    assert stdout == ""


def test_demo_kubeconfig_points_at_namespace_demo(served):
    _, kubeconfig, _ = served
    config = yaml.safe_load(kubeconfig.read_text())
    (context,) = config["contexts"]
    assert context["context"]["namespace"] == "demo"
    assert config["current-context"] == context["name"]


def test_demo_serves_the_pods_through_the_kubeconfig(served, tmp_path):
    import base64

    _, kubeconfig, _ = served
    config = yaml.safe_load(kubeconfig.read_text())
    ca = tmp_path / "ca.crt"
    ca.write_bytes(base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]))
    session = requests.Session()
    session.trust_env = False
    response = session.get(
        config["clusters"][0]["cluster"]["server"] + "/api/v1/namespaces/demo/pods",
        headers={"Authorization": f"Bearer {config['users'][0]['user']['token']}"},
        verify=str(ca),
        timeout=10,
    )
    names = {item["metadata"]["name"] for item in response.json()["items"]}
    assert {"web", "api"} <= names


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_demo_ends_cleanly_on_signal(served, sig):
    process, _, _ = served
    children = _descendants(process.pid)
    assert children, "the demo runtime should have started container processes"
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert not [pid for pid in children if _alive(pid)]


def test_demo_refuses_an_out_of_range_port():
    process = _demo("--write-kubeconfig", "/dev/null", "--port", "70000")
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 64
    assert stderr == "error: --port must be between 0 and 65535, not 70000\n"


def test_demo_reports_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = _demo("--write-kubeconfig", str(tmp_path / "kc"), "--port", str(port))
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 69
    # the demo may first say where its image registry runs; the error is the last but one line
    assert stderr.splitlines()[-2:] == [
        f"error: cannot listen on 127.0.0.1:{port}: address already in use",
        "hint: choose another --port, or 0 for any free port",
    ]


def test_demo_without_kubeconfig_runs_attach_on_web(monkeypatch):
    import kdebug.cli.main as cli_main

    real_main = cli_main.main
    seen: dict[str, object] = {}

    def fake_main(argv):
        config = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
        seen["argv"] = argv
        seen["namespace"] = config["contexts"][0]["context"]["namespace"]
        return 7

    monkeypatch.setattr(cli_main, "main", fake_main)
    assert real_main(["demo"]) == 7
    assert seen == {"argv": ["attach", "web", "-n", "demo"], "namespace": "demo"}
