"""Against a real registry (Debian's docker-registry): every sample classified from the registry alone,
every reference form, auth, cache, byte budget, and failures that degrade within the timeout."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from kdebug.errors import ExitCode
from kdebug.images.classify import Confidence, ImageKind
from kdebug.images.inspection import classify_container_image
from kdebug.images.reference import parse_image_ref
from kdebug.images.registry import (
    RegistryError,
    auths_from_pull_secret,
    credentials_for,
    load_docker_config_auths,
)
from tests.images.registries import AUTH_PASSWORD, AUTH_USER, basic_auths, needs_registry, unused_port

pytestmark = [pytest.mark.registry, needs_registry]
PLATFORM = "linux/amd64"


def classify(
    image: str,
    client: Any,
    catalog: Any,
    image_id: str | None = None,
    auths: Any = None,
    platform: str = PLATFORM,
) -> tuple[Any, dict[str, Any]]:
    return classify_container_image(image, image_id, catalog, client, platform, auths)


@pytest.mark.parametrize(
    ("name", "kind", "flavour", "nonroot", "has_shell"),
    [
        ("scratch", "scratch", None, False, False),
        ("distroless-static", "distroless", "static", False, False),
        ("distroless-base-nonroot", "distroless", "base", True, False),
        ("distroless-static-debug", "distroless", "static", False, True),
        ("distroless-app", "distroless", "base", True, False),
        ("wolfi", "chainguard", "nginx", True, False),
        ("wolfi-dev", "chainguard", "nginx", True, True),
        ("alpine", "alpine", "3.20.3", False, True),
        ("debian-slim", "debian", "12", False, True),
        ("debian-app-user", "debian", "12", True, True),
    ],
    ids=[
        "scratch",
        "distroless static",
        "distroless base nonroot",
        "distroless static debug",
        "app FROM distroless",
        "wolfi",
        "wolfi dev",
        "alpine",
        "debian slim",
        "debian app user",
    ],
)
def test_each_sample_is_classified_from_the_registry_alone(
    pushed, make_client, catalog_for, name, kind, flavour, nonroot, has_shell
) -> None:
    verdict, info = classify(str(pushed[name].ref), make_client(), catalog_for())
    assert (verdict.kind.value, verdict.flavour, verdict.nonroot, verdict.has_shell, info["consulted"]) == (
        kind,
        flavour,
        nonroot,
        has_shell,
        True,
    )


def test_tag_reference_reports_the_manifest_digest(pushed, make_client, catalog_for) -> None:
    _, info = classify(str(pushed["scratch"].ref), make_client(), catalog_for())
    assert info["manifest_digest"] == pushed["scratch"].digest


def test_digest_reference_is_fetched_by_digest(pushed, make_client, catalog_for) -> None:
    item = pushed["distroless-static"]
    verdict, info = classify(f"{item.ref.name}@{item.digest}", make_client(), catalog_for())
    assert (verdict.kind, info["manifest_digest"]) == (ImageKind.DISTROLESS, item.digest)


def test_image_id_of_the_running_container_is_used_for_the_lookup(pushed, make_client, catalog_for) -> None:
    item = pushed["alpine"]
    verdict, info = classify(
        f"{item.ref.name}:no-such-tag",
        make_client(),
        catalog_for(),
        image_id=f"{item.ref.name}@{item.digest}",
    )
    assert (verdict.kind, info["manifest_digest"]) == (ImageKind.ALPINE, item.digest)


def test_mirror_rewrite_fetches_from_the_mirror(pushed, registry, make_client, catalog_for) -> None:
    catalog = catalog_for(
        {"mirrors": [{"from": "registry.corp.example/acme", "to": f"{registry.host}/acme"}]}
    )
    verdict, info = classify("registry.corp.example/acme/wolfi:1.0", make_client(), catalog)
    assert (verdict.kind, info["reference"]) == (ImageKind.CHAINGUARD, f"{registry.host}/acme/wolfi:1.0")


def test_mirrored_upstream_name_still_chooses_the_mirrored_debug_image(
    registry, make_client, catalog_for
) -> None:
    from kdebug.images.inspection import make_image_chooser

    config = {"mirrors": [{"from": "gcr.io/distroless", "to": f"{registry.host}/distroless"}]}
    pod = {
        "metadata": {"namespace": "n"},
        "spec": {"containers": [{"name": "app", "image": "gcr.io/distroless/base-debian12:nonroot"}]},
    }
    choice = make_image_chooser(config, registry_client=make_client())(pod, "app")
    assert choice.image == f"{registry.host}/distroless/base-debian12:debug-nonroot"


@pytest.mark.parametrize(
    ("platform", "has_shell"),
    [("linux/amd64", False), ("linux/arm64", True)],
    ids=["amd64 entry", "arm64 entry"],
)
def test_index_resolves_to_the_platform(pushed_index, make_client, catalog_for, platform, has_shell) -> None:
    verdict, _ = classify(str(pushed_index.ref), make_client(), catalog_for(), platform=platform)
    assert (verdict.kind, verdict.has_shell) == (ImageKind.DISTROLESS, has_shell)


def test_index_without_the_platform_degrades_with_the_platforms_it_has(
    pushed_index, make_client, catalog_for
) -> None:
    verdict, info = classify(str(pushed_index.ref), make_client(), catalog_for(), platform="linux/s390x")
    assert "has no image for platform linux/s390x (it has: linux/amd64, linux/arm64)" in info["error"]


def test_warm_cache_makes_no_registry_request(pushed, make_client, catalog_for) -> None:
    image = str(pushed["distroless-base-nonroot"].ref)
    cold, warm = make_client(), make_client()  # two clients, one cache dir: a second `kdebug inspect`
    first, _ = classify(image, cold, catalog_for())
    second, info = classify(image, warm, catalog_for())
    assert (cold.stats.requests > 0, warm.stats.requests, info["from_cache"], second.kind) == (
        True,
        0,
        True,
        first.kind,
    )


def test_cache_by_running_digest_needs_no_tag_lookup(pushed, make_client, catalog_for, tmp_path) -> None:
    item = pushed["wolfi"]
    classify(str(item.ref), make_client(), catalog_for())
    warm = make_client()
    warm.cache.tag_seconds = 0  # the tag entry has expired; the imageID digest still hits
    verdict, _ = classify(str(item.ref), warm, catalog_for(), image_id=f"{item.ref.name}@{item.digest}")
    assert (warm.stats.requests, verdict.kind) == (0, ImageKind.CHAINGUARD)


def test_conclusive_reference_makes_no_registry_request(make_client, catalog_for) -> None:
    client = make_client()
    classify("gcr.io/distroless/static-debian12:nonroot", client, catalog_for())
    assert client.stats.requests == 0


def test_byte_budget_keeps_a_java_image_far_below_its_size(pushed_java, make_client, catalog_for) -> None:
    client = make_client()
    verdict, _ = classify(str(pushed_java.ref), client, catalog_for())
    assert (verdict.kind, verdict.flavour, verdict.nonroot) == (ImageKind.DISTROLESS, "java17", True)
    assert client.stats.bytes_downloaded < pushed_java.image.size / 50


def test_a_tiny_budget_reads_no_layer_and_says_so(pushed, make_client, catalog_for) -> None:
    verdict, _ = classify(str(pushed["debian-slim"].ref), make_client(byte_budget=10), catalog_for())
    assert (verdict.has_shell, any("read 0 of 1 layers" in e.detail for e in verdict.evidence)) == (
        None,
        True,
    )


# --- auth ----------------------------------------------------------------------------------------------


def test_registry_with_auth_and_no_credentials_degrades_with_a_message(
    private_image, make_client, catalog_for
) -> None:
    verdict, info = classify(str(private_image), make_client(), catalog_for())
    assert (verdict.kind, "requires authentication" in info["error"]) == (ImageKind.UNKNOWN, True)
    assert AUTH_PASSWORD not in json.dumps(info)


def test_docker_config_json_credentials_are_used(
    private_image, auth_registry, isolated_home, make_client, catalog_for
) -> None:
    docker = isolated_home / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"auths": basic_auths(auth_registry.host)}))
    client = make_client(auths=load_docker_config_auths())
    verdict, _ = classify(str(private_image), client, catalog_for())
    assert (verdict.kind, verdict.nonroot) == (ImageKind.DISTROLESS, True)


def test_wrong_password_is_refused_without_echoing_it(
    private_image, auth_registry, make_client, catalog_for
) -> None:
    import base64

    bad = {auth_registry.host: {"auth": base64.b64encode(f"{AUTH_USER}:wrong-pw-999".encode()).decode()}}
    _, info = classify(str(private_image), make_client(), catalog_for(), auths=bad)
    assert "denied" in info["error"] and "wrong-pw-999" not in info["error"]


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("reg.lan:5000", "reg.lan:5000"),
        ("https://reg.lan:5000", "reg.lan:5000"),
    ],
    ids=["docker hub legacy key", "bare host", "https url key"],
)
def test_credentials_match_docker_key_forms(key: str, host: str) -> None:
    assert credentials_for(host, {key: {"username": "u", "password": "p"}}) == {
        "username": "u",
        "password": "p",
    }


def test_pull_secret_dockerconfigjson_is_decoded() -> None:
    import base64

    payload = base64.b64encode(json.dumps({"auths": {"reg:1": {"auth": "dTpw"}}}).encode()).decode()
    secret = {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": payload}}
    assert credentials_for("reg:1", auths_from_pull_secret(secret)) == {"username": "u", "password": "p"}


# --- failures ------------------------------------------------------------------------------------------


def test_unreachable_registry_degrades_quickly_with_a_message(make_client, catalog_for) -> None:
    port = unused_port()
    started = time.monotonic()
    verdict, info = classify(f"127.0.0.1:{port}/acme/app:1", make_client(timeout=2), catalog_for())
    assert time.monotonic() - started < 2
    assert ("unreachable" in info["error"], verdict.confidence, len(verdict.warnings)) == (
        True,
        Confidence.LOW,
        1,
    )


def test_stalling_registry_is_bounded_by_the_timeout(stalling_server, make_client, catalog_for) -> None:
    started = time.monotonic()
    _, info = classify(
        f"127.0.0.1:{stalling_server.port}/acme/app:1", make_client(timeout=0.5), catalog_for()
    )
    elapsed = time.monotonic() - started
    assert stalling_server.connected.is_set() and "did not answer within 0.5s" in info["error"]
    assert elapsed < 2.0


def test_an_unreachable_registry_is_not_asked_again_for_a_while(
    stalling_server, tmp_path, catalog_for
) -> None:
    from kdebug.images.catalog import RegistrySettings
    from kdebug.images.registry import UNREACHABLE_CACHE_SECONDS, EvidenceCache, RegistryClient

    now = [1000.0]
    cache = EvidenceCache(tmp_path / "cache", clock=lambda: now[0])

    def attempt() -> str:
        client = RegistryClient(settings=RegistrySettings(timeout=0.5), cache=cache, docker_auths={})
        _, info = classify(f"127.0.0.1:{stalling_server.port}/acme/app:1", client, catalog_for())
        return info["error"]

    assert "did not answer within 0.5s" in attempt()
    stalling_server.connected.wait(5)
    now[0] += UNREACHABLE_CACHE_SECONDS - 1
    started = time.monotonic()
    assert "not asked again" in attempt()
    assert time.monotonic() - started < 0.4 and len(stalling_server.accepted) == 1
    now[0] += 2  # the window is over: the registry is asked again
    assert "did not answer within 0.5s" in attempt()
    assert len(stalling_server.accepted) == 2


def test_an_image_that_runs_out_of_time_does_not_mark_its_registry_unreachable(
    pushed, registry, tmp_path, catalog_for
) -> None:
    from kdebug.images.registry import EvidenceCache, RegistryClient

    cache = EvidenceCache(tmp_path / "cache")
    client = RegistryClient(cache=cache, docker_auths={}, deadline_seconds=1e-9)  # spent before it starts
    _, info = classify(f"{registry.host}/acme/alpine:1.0", client, catalog_for())
    assert "took longer than" in info["error"]
    assert cache.unreachable(registry.host) is None  # the registry answers; the next image may ask it


def test_missing_image_is_a_not_found_registry_error(registry, make_client) -> None:
    from kdebug.images.registry import _Deadline

    client = make_client()
    with pytest.raises(RegistryError) as caught:
        client.resolve(
            parse_image_ref(f"{registry.host}/acme/nope:1"), PLATFORM, {}, _Deadline(5, time.monotonic)
        )
    assert caught.value.exit_code == ExitCode.NOT_FOUND


# --- the bearer-token flow (Docker Hub style), through a proxy in front of the real registry ---------------


def test_anonymous_bearer_token_flow(pushed, bearer_proxy, make_client, catalog_for) -> None:
    verdict, info = classify(f"{bearer_proxy.host}/acme/alpine:1.0", make_client(), catalog_for())
    assert (info["error"], verdict.kind) == (None, ImageKind.ALPINE)
    assert sum(path.startswith("/token") for path in bearer_proxy.requests) == 1  # one token, reused


def test_bearer_token_with_basic_credentials(
    pushed, bearer_proxy_with_user, make_client, catalog_for
) -> None:
    host = bearer_proxy_with_user.host
    verdict, _ = classify(f"{host}/acme/alpine:1.0", make_client(auths=basic_auths(host)), catalog_for())
    assert verdict.kind is ImageKind.ALPINE


def test_bearer_token_refused_without_credentials(
    pushed, bearer_proxy_with_user, make_client, catalog_for
) -> None:
    _, info = classify(f"{bearer_proxy_with_user.host}/acme/alpine:1.0", make_client(), catalog_for())
    assert "requires authentication" in info["error"]


def test_warm_cache_sends_nothing_to_the_registry(pushed, bearer_proxy, make_client, catalog_for) -> None:
    image = f"{bearer_proxy.host}/acme/debian-slim:1.0"
    classify(image, make_client(), catalog_for())
    seen = len(bearer_proxy.requests)
    classify(image, make_client(), catalog_for())
    assert (seen > 0, len(bearer_proxy.requests)) == (True, seen)


def test_service_unavailable_is_retried(pushed, bearer_proxy, make_client, catalog_for) -> None:
    bearer_proxy.fail_next = 2
    client = make_client(retries=2)
    client.sleep = lambda seconds: None  # the backoff itself is not under test
    verdict, info = classify(f"{bearer_proxy.host}/acme/alpine:1.0", client, catalog_for())
    assert (info["error"], verdict.kind, bearer_proxy.fail_next) == (None, ImageKind.ALPINE, 0)


def test_persistent_service_unavailable_gives_up_after_the_retries(
    pushed, bearer_proxy, make_client, catalog_for
) -> None:
    bearer_proxy.fail_next = 100
    client = make_client(retries=1)
    client.sleep = lambda seconds: None
    _, info = classify(f"{bearer_proxy.host}/acme/alpine:1.0", client, catalog_for())
    assert "HTTP 503" in info["error"] and bearer_proxy.fail_next == 98


def test_running_digest_unknown_to_the_registry_falls_back_to_the_tag(
    pushed, make_client, catalog_for
) -> None:
    item = pushed["alpine"]
    config_digest_like = "sha256:" + "9" * 64  # what some runtimes report as imageID
    verdict, info = classify(str(item.ref), make_client(), catalog_for(), image_id=config_digest_like)
    assert (info["error"], verdict.kind, info["manifest_digest"]) == (None, ImageKind.ALPINE, item.digest)
