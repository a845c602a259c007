"""kubeconfig loading: kubectl's merge rules, static credentials, and the official loader for the rest."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from kdebug.errors import UsageError
from kdebug.kube import client as kube
from kdebug.kube import kubeconfig as kc
from kdebug_emulator import Emulator


def write(path: Path, clusters: dict, users: dict, contexts: dict, current: str | None = None) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": c} for n, c in contexts.items()],
    }
    if current:
        doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    return path


CTX = {"main": {"cluster": "c", "user": "u", "namespace": "team"}}


@pytest.mark.parametrize(
    ("user", "static"),
    [
        pytest.param({"token": "t"}, True, id="token"),
        pytest.param({"username": "a", "password": "b"}, True, id="basic auth"),
        pytest.param({"client-certificate-data": "QQ==", "client-key-data": "QQ=="}, True, id="client cert"),
        pytest.param(
            {"exec": {"command": "x", "apiVersion": "client.authentication.k8s.io/v1"}},
            False,
            id="exec plugin",
        ),
        pytest.param({"auth-provider": {"name": "oidc"}}, False, id="auth provider"),
        pytest.param({"token": "t", "as": "someone"}, False, id="impersonation"),
    ],
)
def test_only_static_credentials_skip_the_official_loader(tmp_path: Path, user: dict, static: bool) -> None:
    path = write(tmp_path / "config", {"c": {"server": "https://k:6443"}}, {"u": user}, CTX, "main")
    credentials = kc.static_credentials(kc.load_merged([path]), None)
    assert (credentials is not None) == static


def test_a_proxy_url_needs_the_official_loader(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config",
        {"c": {"server": "https://k", "proxy-url": "http://p:3128"}},
        {"u": {"token": "t"}},
        CTX,
        "main",
    )
    assert kc.static_credentials(kc.load_merged([path]), None) is None


def test_first_file_wins_for_each_name_and_for_the_current_context(tmp_path: Path) -> None:
    first = write(tmp_path / "a", {"c": {"server": "https://first"}}, {"u": {"token": "one"}}, CTX, "main")
    second = write(
        tmp_path / "b",
        {"c": {"server": "https://second"}, "d": {"server": "https://d"}},
        {"u": {"token": "two"}},
        {"other": {"cluster": "d", "user": "u"}},
        "other",
    )
    merged = kc.load_merged([first, second])
    assert merged.current_context == "main"
    credentials = kc.static_credentials(merged, None)
    assert (credentials.server, credentials.token) == ("https://first", "one")
    assert kc.static_credentials(merged, "other").server == "https://d"


def test_relative_paths_resolve_against_their_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_text("ca")
    (tmp_path / "token").write_text("from-file\n")
    path = write(
        tmp_path / "config",
        {"c": {"server": "https://k", "certificate-authority": "certs/ca.crt"}},
        {"u": {"tokenFile": "token"}},
        CTX,
        "main",
    )
    credentials = kc.static_credentials(kc.load_merged([path]), None)
    assert credentials.ca_file == str(tmp_path / "certs" / "ca.crt")
    assert credentials.token == "from-file"


def test_embedded_keys_stay_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Once written to private temporary files (left behind by SIGKILL); tests/hostile checks a killed run.
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    cert, key = (base64.b64encode(data).decode() for data in (b"CERTIFICATE", b"PRIVATE KEY"))
    path = write(
        tmp_path / "config",
        {"c": {"server": "https://k"}},
        {"u": {"client-certificate-data": cert, "client-key-data": key}},
        CTX,
        "main",
    )
    credentials = kc.static_credentials(kc.load_merged([path]), None)
    assert (credentials.cert_data, credentials.key_data) == (b"CERTIFICATE", b"PRIVATE KEY")
    assert (credentials.cert_file, credentials.key_file) == (None, None)
    assert "PRIVATE" not in repr(credentials)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_token_never_shows_in_repr(tmp_path: Path) -> None:
    path = write(tmp_path / "config", {"c": {"server": "https://k"}}, {"u": {"token": "s3cr3t"}}, CTX, "main")
    assert "s3cr3t" not in repr(kc.static_credentials(kc.load_merged([path]), None))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("a: [unclosed", "not valid YAML", id="bad yaml"),
        pytest.param("- a list", "expected a mapping", id="not a mapping"),
    ],
)
def test_malformed_kubeconfig_is_a_usage_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        kube.connect(str(path))


def test_missing_embedded_ca_file_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config",
        {"c": {"server": "https://k", "certificate-authority": "nope.crt"}},
        {"u": {"token": "t"}},
        CTX,
        "main",
    )
    with pytest.raises(UsageError, match="nope.crt does not exist"):
        kube.connect(str(path))


@pytest.mark.parametrize("auth", ["token", "cert"])
def test_static_kubeconfigs_reach_the_emulator(emulator: Emulator, tmp_path: Path, auth: str) -> None:
    path = emulator.write_kubeconfig(tmp_path / "config", auth=auth)
    client = kube.connect(str(path))
    assert client.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"
    assert emulator.requests[-1]["user"] == "admin"


def test_exec_plugins_go_through_the_official_loader(emulator: Emulator, tmp_path: Path) -> None:
    plugin = tmp_path / "credential-plugin"
    plugin.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import json
        print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                          "status": {{"token": {emulator.token("admin")!r}}}}}))
        """)
    )
    plugin.chmod(0o700)
    config = yaml.safe_load(emulator.write_kubeconfig(tmp_path / "static").read_text())
    config["users"][0]["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))
    client = kube.connect(str(path))
    assert client.get("/api/v1/namespaces/default")["metadata"]["name"] == "default"
    assert emulator.requests[-1]["user"] == "admin"


def test_attach_with_a_static_kubeconfig_never_imports_kubernetes(demo_emulator: Emulator) -> None:
    code = textwrap.dedent(f"""\
        import sys
        from kdebug.cli.main import main
        code = main(["attach", "web", "-n", "demo", "--kubeconfig", {str(demo_emulator.kubeconfig)!r},
                     "--", "true"])
        print(code, "kubernetes" in sys.modules)
        """)
    env = {**os.environ, "XDG_DATA_HOME": str(demo_emulator.workdir / "data")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.stdout.split() == ["0", "False"], result.stderr


@pytest.mark.parametrize(
    ("cluster", "user"),
    [
        pytest.param(
            {"certificate-authority-data": base64.b64encode(b"not a certificate").decode()},
            {},
            id="CA data that is no certificate",
        ),
        pytest.param(
            {},
            {
                "client-certificate-data": base64.b64encode(b"junk").decode(),
                "client-key-data": base64.b64encode(b"junk").decode(),
            },
            id="client pair that is junk",
        ),
    ],
)
def test_unusable_tls_material_is_one_usage_error(tmp_path: Path, cluster: dict, user: dict) -> None:
    path = write(
        tmp_path / "config",
        {"c": {"server": "https://127.0.0.1:9", **cluster}},
        {"u": {"token": "t", **user}},
        CTX,
        "main",
    )
    with pytest.raises(UsageError, match="cannot be used") as info:
        kube.connect(str(path))
    assert "junk" not in info.value.message and "not a certificate" not in info.value.message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"\xff\xfe\x00binary", "not a text file", id="binary file"),
        pytest.param(b"contexts: {a: b}", "contexts must be a list", id="contexts not a list"),
        pytest.param(
            b"contexts:\n- name: main\n  context: just-a-string\ncurrent-context: main",
            "must be a mapping",
            id="context body not a mapping",
        ),
    ],
)
def test_wrongly_shaped_kubeconfigs_are_one_usage_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "config"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        kube.connect(str(path))


def test_embedded_ca_data_stays_in_memory(tmp_path: Path) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    path = write(
        tmp_path / "config",
        {"c": {"server": "https://k", "certificate-authority-data": base64.b64encode(pem).decode()}},
        {"u": {"token": "t"}},
        CTX,
        "main",
    )
    credentials = kc.static_credentials(kc.load_merged([path]), None)
    assert (credentials.ca_file, credentials.ca_data) == (None, pem.decode())
