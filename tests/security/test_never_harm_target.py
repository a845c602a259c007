"""kdebug's own commands against a cluster with a target and a crash-looping pod: every request they
send is judged by the never-harm plugin (tests/fixtures/never_harm.py) as it reaches the emulator; here,
on top, the writes a copy needs are exactly one creation and one deletion of kdebug's own copy, and the
original pods are left as they were."""

from __future__ import annotations

from kdebug.cli.main import main
from kdebug.errors import ExitCode
from tests.fixtures.cluster import BUSYBOX, CRASHING_COMMAND, MUTATING


def test_attach_copy_and_doctor_send_only_harmless_writes(cluster, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.delenv("KDEBUG_CONFIG", raising=False)
    cluster.namespace("team", "baseline")
    cluster.pod("team", "web")
    cluster.pod("team", "shop", image=BUSYBOX, command=CRASHING_COMMAND, wait=False)
    kubeconfig = str(cluster.kubeconfig(namespace="team"))
    web_before = cluster.fresh_pod("team", "web")
    start = len(cluster.emu.requests)

    attached = main(["attach", "web", "--kubeconfig", kubeconfig, "--image", BUSYBOX, "--", "true"])
    copied = main(
        ["attach", "shop", "--kubeconfig", kubeconfig, "--image", BUSYBOX, "--copy"]
        + ["--copy-command", "sleep 3600", "--delete", "--", "true"]
    )
    doctor = main(["doctor", "--kubeconfig", kubeconfig, "web"])
    capfd.readouterr()

    assert (attached, copied) == (0, 0)
    assert doctor in (ExitCode.OK, ExitCode.CHECK_FAILED)
    writes = [r for r in cluster.emu.requests[start:] if r["method"] in MUTATING]
    copies = [w["path"] for w in writes if w["method"] == "POST" and w["path"].endswith("/pods")]
    deletes = [w["path"] for w in writes if w["method"] == "DELETE"]
    assert copies == ["/api/v1/namespaces/team/pods"]
    assert len(deletes) == 1 and deletes[0].startswith("/api/v1/namespaces/team/pods/shop-kdebug-")
    assert cluster.emu.get("pods", "team", "shop") is not None
    web_after = cluster.fresh_pod("team", "web")
    # the target's own containers are untouched; only an ephemeral container was added
    assert web_after["spec"]["containers"] == web_before["spec"]["containers"]
    assert len(web_after["spec"].get("ephemeralContainers") or []) == 1
