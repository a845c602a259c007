"""Benchmark: classify a 3-container pod against a local registry, cold and warm cache; bytes read for java.

Run: .venv/bin/python benchmarks/bench_classify.py
Needs Debian's docker-registry. Prints registry requests, wall time and bytes; writes nothing outside /tmp.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from kdebug.images.catalog import RegistrySettings, load_catalog
from kdebug.images.inspection import classify_container_image, inspect_pod
from kdebug.images.reference import parse_image_ref
from kdebug.images.registry import EvidenceCache, RegistryClient
from kdebug_emulator import localregistry, ocibuild

RUNS = 5
JAVA_PAYLOAD = 60 * 1024 * 1024


def push_samples(host: str) -> dict[str, str]:
    client = RegistryClient(docker_auths={})
    images = {
        "web": ocibuild.scratch_app_image(),
        "api": ocibuild.distroless_app_image(),
        "sidecar": ocibuild.alpine_image(),
    }
    refs = {}
    for name, image in images.items():
        ref = parse_image_ref(f"{host}/shop/{name}:1.0")
        ocibuild.push_image(client, ref, image, "1.0")
        refs[name] = str(ref)
    return refs


def three_container_pod(refs: dict[str, str]) -> dict:
    return {
        "metadata": {"name": "shop-1", "namespace": "bench"},
        "spec": {"containers": [{"name": name, "image": image} for name, image in refs.items()]},
    }


def measure(pod: dict, cache_dir: Path) -> tuple[float, int]:
    client = RegistryClient(settings=RegistrySettings(), cache=EvidenceCache(cache_dir), docker_auths={})
    started = time.perf_counter()
    report = inspect_pod(pod, "web", load_catalog({}), client, "linux/amd64")
    elapsed = time.perf_counter() - started
    assert [c["classification"]["kind"] for c in report["containers"]] == ["scratch", "distroless", "alpine"]
    return elapsed, client.stats.requests


def main() -> None:
    with localregistry.start_registry() as registry:
        pod = three_container_pod(push_samples(registry.host))
        cold, warm, cold_requests, warm_requests = [], [], 0, 0
        for _ in range(RUNS):
            with tempfile.TemporaryDirectory() as tmp:
                seconds, cold_requests = measure(pod, Path(tmp))
                cold.append(seconds)
                seconds, warm_requests = measure(pod, Path(tmp))
                warm.append(seconds)
        print(
            f"3-container pod, cold cache: {cold_requests} registry requests, "
            f"median {statistics.median(cold) * 1000:.1f} ms (of {RUNS})"
        )
        print(
            f"3-container pod, warm cache: {warm_requests} registry requests, "
            f"median {statistics.median(warm) * 1000:.1f} ms (of {RUNS})"
        )

        java = ocibuild.distroless_image("java", nonroot=True, java_payload=JAVA_PAYLOAD)
        ref = parse_image_ref(f"{registry.host}/shop/payments:2.1")
        ocibuild.push_image(RegistryClient(docker_auths={}), ref, java, "2.1")
        client = RegistryClient(docker_auths={})
        started = time.perf_counter()
        verdict, _ = classify_container_image(str(ref), None, load_catalog({}), client, "linux/amd64")
        elapsed = time.perf_counter() - started
        print(
            f"distroless java ({verdict.kind.value} {verdict.flavour}, nonroot={verdict.nonroot}): "
            f"{client.stats.bytes_downloaded:,} bytes downloaded of {java.size:,} "
            f"({client.stats.bytes_downloaded / java.size:.4%}), {client.stats.requests} requests, "
            f"{elapsed * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
