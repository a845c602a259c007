"""Docker credential helpers (`credHelpers`, `credsStore`) run against a real password-protected registry:
the helper is a real executable on PATH speaking the helper protocol over stdin/stdout."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from kdebug.images.classify import ImageKind
from kdebug.images.inspection import classify_container_image
from kdebug.images.reference import parse_image_ref
from kdebug.images.registry import (
    DOCKER_HUB_SERVER_URL,
    CredentialHelpers,
    RegistryClient,
    helper_credentials,
    load_credential_helpers,
)
from tests.images.registries import AUTH_PASSWORD, AUTH_USER, needs_registry

pytestmark = [pytest.mark.registry, needs_registry]

HELPER_SCRIPT = """#!/bin/sh
# docker-credential-NAME get: the server on stdin, JSON on stdout; exit 1 when there is nothing for it
[ "$1" = get ] || exit 2
read server
echo "$server" >> "{calls}"
if [ "$server" = "{host}" ]; then
  printf '{{"ServerURL": "%s", "Username": "{user}", "Secret": "{secret}"}}' "$server"
else
  echo "credentials not found in native keychain" >&2; exit 1
fi
"""


def install_helper(bin_dir: Path, name: str, host: str, secret: str = AUTH_PASSWORD) -> Path:
    """An executable `docker-credential-NAME` that knows `host`; returns the file it logs each call to."""
    bin_dir.mkdir(exist_ok=True)
    calls = bin_dir / f"{name}.calls"
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(HELPER_SCRIPT.format(calls=calls, host=host, user=AUTH_USER, secret=secret))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return calls


@pytest.fixture
def helper_path(tmp_path, monkeypatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return bin_dir


def classify_with(helpers: CredentialHelpers, image: Any, catalog: Any, tmp_path: Path) -> tuple[Any, dict]:
    from kdebug.images.registry import EvidenceCache

    cache = EvidenceCache(tmp_path / "cache")
    client = RegistryClient(cache=cache, docker_auths={}, credential_helpers=helpers)
    return classify_container_image(str(image), None, catalog, client, "linux/amd64", {})


def test_a_registry_helper_supplies_the_credentials(
    private_image, auth_registry, helper_path, catalog_for, tmp_path
):
    calls = install_helper(helper_path, "corp", auth_registry.host)
    helpers = CredentialHelpers(per_registry={auth_registry.host: "corp"})
    verdict, _ = classify_with(helpers, private_image, catalog_for(), tmp_path)
    assert (verdict.kind, verdict.nonroot) == (ImageKind.DISTROLESS, True)
    assert calls.read_text().splitlines() == [auth_registry.host]  # asked once, with the registry's name


def test_the_default_store_answers_for_registries_without_their_own_helper(
    private_image, auth_registry, helper_path, catalog_for, tmp_path
):
    install_helper(helper_path, "store", auth_registry.host)
    verdict, _ = classify_with(CredentialHelpers(default="store"), private_image, catalog_for(), tmp_path)
    assert verdict.kind == ImageKind.DISTROLESS


def test_a_helper_without_credentials_degrades_like_no_credentials(
    private_image, helper_path, catalog_for, tmp_path
):
    install_helper(helper_path, "empty", "some-other-registry.example")
    verdict, info = classify_with(CredentialHelpers(default="empty"), private_image, catalog_for(), tmp_path)
    assert verdict.kind == ImageKind.UNKNOWN
    assert "requires authentication" in info["error"] and "credential helpers" in info["error"]


def test_a_wrong_secret_from_a_helper_is_refused_without_echoing_it(
    private_image, auth_registry, helper_path, catalog_for, tmp_path
):
    install_helper(helper_path, "stale", auth_registry.host, secret="stale-secret-123")
    verdict, info = classify_with(CredentialHelpers(default="stale"), private_image, catalog_for(), tmp_path)
    assert verdict.kind == ImageKind.UNKNOWN
    assert "stale-secret-123" not in json.dumps(info)


def test_a_missing_helper_program_means_no_credentials(helper_path):
    assert helper_credentials("not-installed", "registry.example") is None


def test_docker_hub_is_asked_for_by_dockers_server_url(helper_path):
    calls = install_helper(helper_path, "hub", DOCKER_HUB_SERVER_URL)
    assert helper_credentials("hub", "docker.io") == {"username": AUTH_USER, "password": AUTH_PASSWORD}
    assert calls.read_text().splitlines() == [DOCKER_HUB_SERVER_URL]


@pytest.mark.parametrize(
    "name", ["../../bin/sh", "a/b", "-rf", ""], ids=["traversal", "slash", "dash", "empty"]
)
def test_a_helper_name_that_is_not_a_plain_name_is_never_run(name):
    ran: list[Any] = []
    assert helper_credentials(name, "registry.example", run=lambda *a, **k: ran.append(a)) is None
    assert ran == []


def test_config_json_names_per_registry_helpers_and_the_default_store(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credsStore": "desktop", "credHelpers": {"123.dkr.ecr.aws": "ecr-login"}}))
    helpers = load_credential_helpers(path)
    assert (helpers.helper_for("123.dkr.ecr.aws"), helpers.helper_for("ghcr.io")) == ("ecr-login", "desktop")


def test_no_config_json_means_no_helpers(tmp_path):
    assert load_credential_helpers(tmp_path / "absent.json").helper_for("ghcr.io") is None


def test_a_public_image_behind_a_token_service_never_runs_the_helper(
    pushed, bearer_proxy, helper_path, catalog_for, tmp_path
):
    calls = install_helper(helper_path, "desktop", bearer_proxy.host)
    image = parse_image_ref(f"{bearer_proxy.host}/acme/alpine:1.0")
    verdict, info = classify_with(CredentialHelpers(default="desktop"), image, catalog_for(), tmp_path)
    assert (info["error"], verdict.kind) == (None, ImageKind.ALPINE)
    assert not calls.exists()  # the anonymous token was enough: no helper process, no keychain prompt


def test_a_token_service_that_wants_credentials_gets_them_from_the_helper(
    pushed, bearer_proxy_with_user, helper_path, catalog_for, tmp_path
):
    calls = install_helper(helper_path, "desktop", bearer_proxy_with_user.host)
    image = parse_image_ref(f"{bearer_proxy_with_user.host}/acme/alpine:1.0")
    verdict, info = classify_with(CredentialHelpers(default="desktop"), image, catalog_for(), tmp_path)
    assert (info["error"], verdict.kind) == (None, ImageKind.ALPINE)
    assert calls.read_text().splitlines() == [bearer_proxy_with_user.host]
