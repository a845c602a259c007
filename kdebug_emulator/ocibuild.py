"""Build OCI images in Python (tar.gz layers, config, manifest, multi-arch index) and push them.

Used by the tests and by `kdebug demo`. The sample images reproduce the layouts that matter for
classification (see docs/classification.md): distroless static/base/java (os-release saying
"Distroless", dpkg status.d, the nonroot user 65532), Wolfi/Chainguard, Alpine, Debian slim and a
scratch image holding one static binary. Layers are deterministic (mtime 0), so digests are stable.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdebug.images.reference import ImageRef, parse_image_ref

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
STATIC_BINARY = Path("/bin/busybox")  # Debian's busybox-static: one static binary
DISTROLESS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SSL_CERT_FILE = "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class Entry:
    path: str
    data: bytes = b""
    mode: int = 0o644
    kind: str = "file"  # file | dir | symlink
    target: str = ""


@dataclass
class Layer:
    blob: bytes  # tar.gz
    diff_id: str  # sha256 of the uncompressed tar

    @property
    def digest(self) -> str:
        return _sha256(self.blob)


@dataclass
class OciImage:
    layers: list[Layer]
    config: dict[str, Any]
    platform: tuple[str, str] = ("linux", "amd64")
    config_bytes: bytes = field(init=False)
    manifest_bytes: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.config = {
            **self.config,
            "os": self.platform[0],
            "architecture": self.platform[1],
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in self.layers]},
        }
        self.config_bytes = _canonical(self.config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": _sha256(self.config_bytes),
                "size": len(self.config_bytes),
            },
            "layers": [
                {"mediaType": OCI_LAYER_GZIP, "digest": layer.digest, "size": len(layer.blob)}
                for layer in self.layers
            ],
        }
        self.manifest_bytes = _canonical(manifest)

    @property
    def digest(self) -> str:
        return _sha256(self.manifest_bytes)

    @property
    def size(self) -> int:
        return sum(len(layer.blob) for layer in self.layers)


# --- building blocks ----------------------------------------------------------------------------------


def build_layer(entries: list[Entry]) -> Layer:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in _with_parent_dirs(entries):
            info = tarfile.TarInfo(entry.path)
            info.mtime = 0
            info.mode = entry.mode
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target
                archive.addfile(info)
            else:
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
    tar_bytes = raw.getvalue()
    return Layer(blob=gzip.compress(tar_bytes, compresslevel=1, mtime=0), diff_id=_sha256(tar_bytes))


def _with_parent_dirs(entries: list[Entry]) -> list[Entry]:
    seen: set[str] = set()
    out: list[Entry] = []
    for entry in entries:
        parts = entry.path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            if directory not in seen:
                seen.add(directory)
                out.append(Entry(directory, mode=0o755, kind="dir"))
        if entry.kind == "dir":
            if entry.path in seen:
                continue
            seen.add(entry.path)
        out.append(entry)
    return out


def image_config(
    user: str = "",
    env: list[str] | None = None,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    labels: dict[str, str] | None = None,
    workdir: str = "/",
    history: list[str] | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {"User": user, "Env": env or [f"PATH={DISTROLESS_PATH}"], "WorkingDir": workdir}
    if entrypoint:
        config["Entrypoint"] = entrypoint
    if cmd:
        config["Cmd"] = cmd
    if labels:
        config["Labels"] = labels
    steps = history or ["bazel build"]
    return {
        "created": "1970-01-01T00:00:00Z",
        "config": config,
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": step} for step in steps],
    }


def index_bytes(images: list[OciImage]) -> bytes:
    manifests = [
        {
            "mediaType": OCI_MANIFEST,
            "digest": image.digest,
            "size": len(image.manifest_bytes),
            "platform": {"os": image.platform[0], "architecture": image.platform[1]},
        }
        for image in images
    ]
    return _canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})


def push_image(client: Any, ref: ImageRef, image: OciImage, tag: str | None = None) -> str:
    """Push layers, config and manifest (under `tag`, else by digest); returns the manifest digest."""
    for layer in image.layers:
        client.push_blob(ref, layer.blob)
    client.push_blob(ref, image.config_bytes)
    return client.push_manifest(ref, image.manifest_bytes, OCI_MANIFEST, tag or image.digest)


def push_index(client: Any, ref: ImageRef, images: list[OciImage], tag: str) -> str:
    for image in images:
        push_image(client, ref, image)
    return client.push_manifest(ref, index_bytes(images), OCI_INDEX, tag)


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- file sets as the real images lay them out ---------------------------------------------------------


def _os_release(**values: str) -> Entry:
    return Entry("etc/os-release", "".join(f'{k}="{v}"\n' for k, v in values.items()).encode())


def _passwd(extra: str = "") -> list[Entry]:
    passwd = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    passwd += "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" + extra
    group = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
    return [Entry("etc/passwd", passwd.encode()), Entry("etc/group", group.encode())]


def _status_d(packages: list[str]) -> list[Entry]:
    entries = []
    for package in packages:
        text = f"Package: {package}\nStatus: install ok installed\nArchitecture: amd64\n"
        entries += [
            Entry(f"var/lib/dpkg/status.d/{package}", text.encode()),
            Entry(f"var/lib/dpkg/status.d/{package}.md5sums", b"0" * 32 + b"  usr/share/doc\n"),
        ]
    return entries


def _glibc(arch_dir: str = "x86_64-linux-gnu") -> list[Entry]:
    return [
        Entry(f"lib/{arch_dir}/libc.so.6", b"\x7fELF fake glibc", 0o755),
        Entry("lib64/ld-linux-x86-64.so.2", kind="symlink", target=f"/lib/{arch_dir}/ld-linux-x86-64.so.2"),
    ]


def _busybox_debug() -> list[Entry]:
    binary = STATIC_BINARY.read_bytes()
    links = [
        Entry(f"busybox/{applet}", kind="symlink", target="/busybox/busybox")
        for applet in ("sh", "ls", "cat")
    ]
    return [Entry("busybox/busybox", binary, 0o755), *links]


def distroless_image(
    flavour: str = "static",
    nonroot: bool = False,
    debug: bool = False,
    release: str = "12",
    java_payload: int = 0,
    arch: str = "amd64",
) -> OciImage:
    """gcr.io/distroless/{static,base,java}-debian{release}:{latest,nonroot,debug,debug-nonroot}."""
    static = [
        _os_release(
            PRETTY_NAME="Distroless",
            NAME="Debian GNU/Linux",
            ID="debian",
            VERSION_ID=release,
            HOME_URL="https://github.com/GoogleContainerTools/distroless",
        ),
        *_passwd(),
        Entry("etc/ssl/certs/ca-certificates.crt", b"-----BEGIN CERTIFICATE-----\n"),
        Entry("home/nonroot", mode=0o700, kind="dir"),
        Entry("tmp", mode=0o1777, kind="dir"),
        *_status_d(["base-files", "netbase", "tzdata", "media-types", "ca-certificates"]),
    ]
    layers = [build_layer(static)]
    env = [f"PATH={DISTROLESS_PATH}", SSL_CERT_FILE]
    entrypoint: list[str] | None = None
    if flavour in ("base", "java"):
        layers.append(build_layer([*_glibc(), *_status_d(["libc6", "libssl3", "zlib1g"])]))
    if flavour == "java":
        payload = os.urandom(java_payload)  # incompressible, like a JDK's modules file
        jvm = "usr/lib/jvm/temurin17_jre_amd64"
        layers.append(
            build_layer(
                [
                    Entry(f"{jvm}/bin/java", b"\x7fELF java", 0o755),
                    Entry(f"{jvm}/lib/modules", payload),
                    Entry("usr/bin/java", kind="symlink", target=f"/{jvm}/bin/java"),
                    *_status_d(["temurin-17-jre"]),
                ]
            )
        )
        env += ["JAVA_VERSION=17.0.13", "LANG=C.UTF-8"]
        entrypoint = ["/usr/bin/java", "-jar"]
    if debug:
        layers.append(build_layer(_busybox_debug()))
        env[0] += ":/busybox"
        entrypoint = entrypoint or ["/busybox/sh"]
    config = image_config(
        user="65532" if nonroot else "0",
        env=env,
        entrypoint=entrypoint,
        workdir="/home/nonroot" if nonroot else "/",
    )
    return OciImage(layers, config, platform=("linux", arch))


def scratch_app_image(arch: str = "amd64") -> OciImage:
    """FROM scratch + one static binary at /app."""
    layer = build_layer([Entry("app", STATIC_BINARY.read_bytes(), 0o755)])
    config = image_config(entrypoint=["/app"], cmd=["httpd", "-f"], history=["COPY app /app # buildkit"])
    return OciImage([layer], config, platform=("linux", arch))


def wolfi_image(name: str = "nginx", dev: bool = False) -> OciImage:
    """cgr.dev/chainguard/X:latest (no shell) or :latest-dev (BusyBox + apk-tools)."""
    files = [
        _os_release(ID="wolfi", NAME="Wolfi", PRETTY_NAME="Wolfi", VERSION_ID="20230201"),
        *_passwd(),
        Entry("lib/apk/db/installed", f"P:{name}\nV:1.27.0-r1\n\nP:glibc\nV:2.40-r3\n".encode()),
        Entry("lib/libc.so.6", b"\x7fELF fake glibc", 0o755),
        Entry(f"usr/sbin/{name}", b"\x7fELF app", 0o755),
    ]
    if dev:
        files += [
            Entry("bin/busybox", STATIC_BINARY.read_bytes(), 0o755),
            Entry("bin/sh", kind="symlink", target="/bin/busybox"),
            Entry("sbin/apk", b"\x7fELF apk", 0o755),
        ]
    labels = {"dev.chainguard.image.title": name, "dev.chainguard.package.main": name}
    config = image_config(user="65532", labels=labels, entrypoint=[f"/usr/sbin/{name}"], history=["apko"])
    return OciImage([build_layer(files)], config)


def alpine_image() -> OciImage:
    files = [
        _os_release(NAME="Alpine Linux", ID="alpine", VERSION_ID="3.20.3", PRETTY_NAME="Alpine Linux v3.20"),
        Entry("etc/alpine-release", b"3.20.3\n"),
        Entry("lib/ld-musl-x86_64.so.1", b"\x7fELF musl", 0o755),
        Entry("bin/busybox", STATIC_BINARY.read_bytes(), 0o755),
        Entry("bin/sh", kind="symlink", target="/bin/busybox"),
        Entry("lib/apk/db/installed", b"P:musl\nV:1.2.5-r0\n\nP:busybox\nV:1.36.1-r29\n"),
        Entry("sbin/apk", b"\x7fELF apk", 0o755),
        *_passwd()[:1],
    ]
    config = image_config(
        env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        cmd=["/bin/sh"],
        history=["ADD alpine-minirootfs.tar.gz /", 'CMD ["/bin/sh"]'],
    )
    return OciImage([build_layer(files)], config)


def debian_slim_image(app_user: str | None = None, drop_bash: bool = False) -> OciImage:
    """debian:12-slim; optionally an app layer running as a named user and a whiteout of /bin/bash."""
    files = [
        _os_release(
            PRETTY_NAME="Debian GNU/Linux 12 (bookworm)",
            NAME="Debian GNU/Linux",
            ID="debian",
            VERSION_ID="12",
        ),
        Entry("etc/debian_version", b"12.8\n"),
        Entry("var/lib/dpkg/status", b"Package: dash\n"),
        Entry("bin/dash", b"\x7fELF dash", 0o755),
        Entry("bin/sh", kind="symlink", target="dash"),
        Entry("bin/bash", b"\x7fELF bash", 0o755),
        *_glibc(),
        *_passwd(),
    ]
    layers = [build_layer(files)]
    history = ["# debian.sh", 'CMD ["bash"]']
    user = ""
    if app_user:
        passwd = _passwd(f"{app_user}:x:1000:1001:app:/home/{app_user}:/bin/sh\n")
        app_files = [passwd[0], Entry(f"home/{app_user}/server", b"\x7fELF server", 0o755)]
        if drop_bash:
            app_files.append(Entry("bin/.wh.bash"))
        layers.append(build_layer(app_files))
        history += ["RUN useradd app # buildkit", "COPY server /home/app/server"]
        user = app_user
    config = image_config(
        user=user,
        env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        cmd=["bash"],
        history=history,
    )
    return OciImage(layers, config)


def distroless_app_image() -> OciImage:
    """An app built FROM gcr.io/distroless/base-debian12:nonroot and renamed: its name says nothing."""
    base = distroless_image("base", nonroot=True)
    app = build_layer([Entry("app/server", b"\x7fELF server", 0o755)])
    config = image_config(
        user="65532",
        env=[f"PATH={DISTROLESS_PATH}", SSL_CERT_FILE],
        entrypoint=["/app/server"],
        workdir="/home/nonroot",
    )
    return OciImage([*base.layers, app], config)


# --- the demo's images ----------------------------------------------------------------------------------

DEMO_REPOSITORY = "registry.kdebug.test/demo"


def push_demo_images(registry_url: str, client: Any = None) -> dict[str, str]:
    """Push the demo's sample images to a local registry (`http://127.0.0.1:PORT` or `127.0.0.1:PORT`).

    Returns upstream-looking reference -> manifest digest. The demo's config maps those names to this
    registry with `demo_mirror_config`. The debug variants are pushed too, so a mirrored catalog
    choice exists in the registry.
    """
    from kdebug.images.registry import RegistryClient

    host = registry_url.split("://", 1)[-1].rstrip("/")
    client = client or RegistryClient(docker_auths={})
    images = {
        f"{DEMO_REPOSITORY}/web:1.0": scratch_app_image(),
        "gcr.io/distroless/base-debian12:nonroot": distroless_image("base", nonroot=True),
        "gcr.io/distroless/base-debian12:debug-nonroot": distroless_image("base", nonroot=True, debug=True),
        "gcr.io/distroless/static-debian12:nonroot": distroless_image("static", nonroot=True),
        "gcr.io/distroless/static-debian12:debug-nonroot": distroless_image(
            "static", nonroot=True, debug=True
        ),
    }
    pushed = {}
    for upstream, image in images.items():
        name, tag = upstream.rsplit(":", 1)
        local = name.replace(DEMO_REPOSITORY, f"{host}/demo").replace(
            "gcr.io/distroless", f"{host}/distroless"
        )
        pushed[upstream] = push_image(client, parse_image_ref(f"{local}:{tag}"), image, tag)
    return pushed


def demo_mirror_config(registry_url: str, mirror_distroless: bool = False) -> dict[str, Any]:
    """The config sections `kdebug demo` writes so the demo's names resolve to its local registry.

    `registry.kdebug.test/demo` is always mirrored (that name exists nowhere else). Mirroring
    `gcr.io/distroless` too makes the catalog choose `HOST:PORT/distroless/...:debug-nonroot` for the
    api pod, so the emulator must then be able to run those mirrored names.
    """
    host = registry_url.split("://", 1)[-1].rstrip("/")
    mirrors = [{"from": DEMO_REPOSITORY, "to": f"{host}/demo"}]
    if mirror_distroless:
        mirrors.append({"from": "gcr.io/distroless", "to": f"{host}/distroless"})
    return {"mirrors": mirrors, "registry": {"insecure": [host]}}
