"""Images the podman runtime really runs, built in Python from Debian's files and pushed to a registry.

The layouts follow kdebug_emulator.ocibuild (distroless os-release, dpkg status.d, nonroot 65532), with two
changes a real container needs: the app must be a program that runs, and debug images need the whole
BusyBox applet set. BusyBox picks its applet from argv[0], so a BusyBox copied to /app cannot idle as
`/app`; the scratch app is therefore Debian's static `catatonit` (podman's own pause process) copied to
/app and run as `/app -P` (pause forever), a real static binary that does nothing.

`registries_conf` writes the mirror rewrite that lets pod specs keep upstream names
(`gcr.io/distroless/base-debian12:nonroot`) while podman pulls from the local registry.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kdebug_emulator.ocibuild import (
    DISTROLESS_PATH,
    SSL_CERT_FILE,
    Entry,
    OciImage,
    build_layer,
    distroless_image,
    image_config,
    push_image,
)

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
CATATONIT_CANDIDATES = (Path("/usr/bin/catatonit"), Path("/usr/libexec/podman/catatonit"))
DEMO_REPOSITORY = "registry.kdebug.test/demo"
WEB_IMAGE = f"{DEMO_REPOSITORY}/web:1.0"
BUSYBOX_IMAGE = "docker.io/library/busybox:1.36.1"
IDLE_ARGS = ["-P"]  # catatonit: pause forever

# upstream prefix -> repository path under the local registry (the mirror rewrite)
MIRRORED_PREFIXES = {
    DEMO_REPOSITORY: "demo",
    "gcr.io/distroless": "distroless",
    "docker.io/library": "library",
    "cgr.dev/chainguard": "chainguard",
}


def static_idle_binary() -> bytes:
    """A static program that idles: catatonit ships with podman on Debian."""
    for candidate in CATATONIT_CANDIDATES:
        if candidate.is_file():
            return candidate.resolve().read_bytes()
    raise FileNotFoundError("catatonit (a podman dependency) is not installed")


def busybox_applets() -> list[str]:
    listing = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout
    return sorted(name for name in listing.split() if name != "busybox")


def busybox_entries(directory: str) -> list[Entry]:
    """BusyBox at DIR/busybox with one symlink per applet, as BusyBox and distroless :debug lay it out."""
    links = [Entry(f"{directory}/{applet}", kind="symlink", target="busybox") for applet in busybox_applets()]
    return [Entry(f"{directory}/busybox", BUSYBOX.read_bytes(), 0o755), *links]


def app_entries() -> list[Entry]:
    return [Entry("app", static_idle_binary(), 0o755)]


def scratch_app() -> OciImage:
    """FROM scratch + one static binary at /app that idles."""
    config = image_config(entrypoint=["/app"], cmd=IDLE_ARGS, history=["COPY app /app # buildkit"])
    return OciImage([build_layer(app_entries())], config)


def distroless_app(flavour: str) -> OciImage:
    """An app on a distroless-like nonroot base (os-release "Distroless", status.d, user 65532)."""
    base = distroless_image(flavour, nonroot=True)
    config = image_config(
        user="65532",
        env=[f"PATH={DISTROLESS_PATH}", SSL_CERT_FILE],
        entrypoint=["/app"],
        cmd=IDLE_ARGS,
        workdir="/home/nonroot",
    )
    return OciImage([*base.layers, build_layer(app_entries())], config)


def distroless_debug(flavour: str, nonroot: bool) -> OciImage:
    """`:debug` / `:debug-nonroot`: the base plus BusyBox in /busybox, entrypoint /busybox/sh."""
    base = distroless_image(flavour, nonroot=nonroot)
    config = image_config(
        user="65532" if nonroot else "0",
        env=[f"PATH={DISTROLESS_PATH}:/busybox", SSL_CERT_FILE],
        entrypoint=["/busybox/sh"],
        workdir="/home/nonroot" if nonroot else "/",
    )
    return OciImage([*base.layers, build_layer(busybox_entries("busybox"))], config)


def busybox_image() -> OciImage:
    """docker.io/library/busybox: BusyBox in /bin, root, `sh` as its command."""
    etc = [
        Entry("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"),
        Entry("etc/group", b"root:x:0:\nnobody:x:65534:\n"),
        Entry("root", mode=0o700, kind="dir"),
        Entry("tmp", mode=0o1777, kind="dir"),
    ]
    config = image_config(
        env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], cmd=["sh"]
    )
    return OciImage([build_layer([*busybox_entries("bin"), *etc])], config)


def podman_images() -> dict[str, OciImage]:
    """Upstream-looking reference -> image, for the tests and the demo."""
    images: dict[str, OciImage] = {WEB_IMAGE: scratch_app(), BUSYBOX_IMAGE: busybox_image()}
    images["docker.io/library/busybox:latest"] = images[BUSYBOX_IMAGE]
    for flavour in ("static", "base"):
        name = f"gcr.io/distroless/{flavour}-debian12"
        images[f"{name}:nonroot"] = distroless_app(flavour)
        images[f"{name}:debug"] = distroless_debug(flavour, nonroot=False)
        images[f"{name}:debug-nonroot"] = distroless_debug(flavour, nonroot=True)
    return images


def local_reference(upstream: str, registry_host: str) -> str:
    """`gcr.io/distroless/base-debian12:nonroot` -> `HOST/distroless/base-debian12:nonroot`."""
    for prefix, path in MIRRORED_PREFIXES.items():
        if upstream.startswith(prefix + "/"):
            return f"{registry_host}/{path}/{upstream[len(prefix) + 1 :]}"
    raise ValueError(f"no mirror for {upstream}")


def push_podman_images(
    registry_host: str, images: Mapping[str, OciImage] | None = None, client: Any = None
) -> dict[str, str]:
    """Push every image to the registry at HOST:PORT under its mirrored name; returns ref -> digest."""
    from kdebug.images.reference import parse_image_ref
    from kdebug.images.registry import RegistryClient

    client = client or RegistryClient(docker_auths={})
    pushed = {}
    for upstream, image in (images or podman_images()).items():
        local = local_reference(upstream, registry_host)
        name, tag = local.rsplit(":", 1)
        pushed[upstream] = push_image(client, parse_image_ref(local), image, tag)
    return pushed


def registries_conf(registry_host: str | None) -> str:
    """registries.conf (v2): upstream prefixes rewritten to the local, plain-HTTP registry.

    A `location` rewrite (not a `[[registry.mirror]]`) means podman never tries the real upstream, so
    an image missing locally fails fast with the registry's own `manifest unknown`.
    """
    lines = ['unqualified-search-registries = ["docker.io"]', 'short-name-mode = "disabled"', ""]
    if registry_host:
        for prefix, path in MIRRORED_PREFIXES.items():
            lines += [
                "[[registry]]",
                f'prefix = "{prefix}"',
                f'location = "{registry_host}/{path}"',
                "insecure = true",
                "",
            ]
        lines += ["[[registry]]", f'location = "{registry_host}"', "insecure = true", ""]
    return "\n".join(lines)


def tools_present() -> tuple[bool, str]:
    """Whether the files these images are built from exist on this machine."""
    if not BUSYBOX.is_file():
        return False, "busybox-static is not installed (/bin/busybox)"
    if not any(candidate.is_file() for candidate in CATATONIT_CANDIDATES):
        return False, "catatonit is not installed"
    if shutil.which("docker-registry") is None:
        return False, "Debian's docker-registry is not installed"
    return True, ""
