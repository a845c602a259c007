"""Through the emulator's request log: kdebug's security, copy and doctor steps only ever send
ephemeral container patches, creations and deletions of kdebug copies, and access reviews."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from kdebug.cli.main import main
from kdebug.debug import spec
from kdebug.debug.copy_pods import create_copy, delete_copy
from kdebug.debug.wait import wait_for_container
from kdebug.errors import WaitTimeoutError
from kdebug.kube.watch import deadline_in
from kdebug.models import ImageChoice
from kdebug.security.decision import apply_security, decide_security
from kdebug.security.preflight import run_preflight
from tests.fixtures.cluster import BUSYBOX, CRASHING_COMMAND, MUTATING

ALLOWED_WRITES = [
    ("PATCH", re.compile(r"^/api/v1/namespaces/[^/]+/pods/[^/]+/ephemeralcontainers$")),
    ("POST", re.compile(r"^/api/v1/namespaces/[^/]+/pods$")),  # creates a copy (checked below)
    ("DELETE", re.compile(r"^/api/v1/namespaces/[^/]+/pods/[^/]+-kdebug-[^/]+$")),
    ("POST", re.compile(r"^/apis/authorization\.k8s\.io/v1/selfsubject(access|rules)reviews$")),
    ("POST", re.compile(r"^/apis/authentication\.k8s\.io/v1/selfsubjectreviews$")),
]


def allowed(request: dict) -> bool:
    return any(
        request["method"] == method and pattern.match(request["path"]) for method, pattern in ALLOWED_WRITES
    )


def test_attach_copy_and_doctor_steps_send_only_allowed_writes(cluster, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.delenv("KDEBUG_CONFIG", raising=False)
    cluster.namespace("team", "baseline")
    cluster.pod("team", "web")
    cluster.pod("team", "shop", image=BUSYBOX, command=CRASHING_COMMAND, wait=False)
    client = cluster.client(namespace="team")
    start = len(cluster.emu.requests)

    # attach's steps
    web = cluster.fresh_pod("team", "web")
    run_preflight(client, "team", "attach", pod_name="web")
    choice = ImageChoice(image=BUSYBOX)
    decision = decide_security(client, web, "app", "auto", False, choice, image_user="0")
    container = spec.build_ephemeral_container(
        name="kdebug-n0harm",
        image=BUSYBOX,
        command=["sh"],
        target="app",
        session_id="s1",
        stdin=True,
        tty=True,
    )
    client.patch(
        "/api/v1/namespaces/team/pods/web/ephemeralcontainers",
        spec.ephemeral_patch(apply_security(container, decision)),
        spec.PATCH_CONTENT_TYPE,
    )
    # copy's steps
    shop = cluster.fresh_pod("team", "shop")
    run_preflight(client, "team", "copy", pod_name="shop")
    debugger = apply_security({**container, "name": "kdebug-dbg"}, decision)
    copy = create_copy(
        client,
        shop,
        "app",
        debugger,
        session_id="s2",
        now=datetime.now(UTC),
        suffix="c0py1",
        copy_command=["sleep", "3600"],
    )
    wait_for_container(
        client,
        "team",
        copy["metadata"]["name"],
        "kdebug-dbg",
        deadline_in(15),
        until_terminated=False,
        timeout_error=lambda last: WaitTimeoutError(f"copy's debugger: {last}"),
    )
    delete_copy(client, "team", copy["metadata"]["name"])
    # doctor
    assert main(["doctor", "--kubeconfig", str(cluster.kubeconfig(namespace="team")), "web"]) in (0, 72)
    capfd.readouterr()

    writes = [r for r in cluster.emu.requests[start:] if r["method"] in MUTATING]
    assert [w for w in writes if not allowed(w)] == []
    assert [w["path"] for w in writes if w["method"] == "DELETE"] == [
        "/api/v1/namespaces/team/pods/shop-kdebug-c0py1"
    ]
    assert len([w for w in writes if w["method"] == "POST" and w["path"].endswith("/pods")]) == 1
    assert cluster.emu.get("pods", "team", "shop") is not None
