"""Start and stop Debian's `docker-registry` (distribution 2.x) on 127.0.0.1 with a temp storage dir.

Used by the tests and by `kdebug demo`. Optional htpasswd auth: the registry only accepts bcrypt
entries; they are made with the `crypt` module (libxcrypt's `$2b$`), else the `bcrypt` package,
else `htpasswd` from apache2-utils. `available()` says whether the binary is installed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kdebug.errors import NotSupportedError, StartFailedError
from kdebug_emulator.childproc import child_dies_with_parent

REGISTRY_BINARY = "docker-registry"
START_TIMEOUT_S = 15.0


def available() -> bool:
    return shutil.which(REGISTRY_BINARY) is not None


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for htpasswd (cost 4: these registries live for one test run)."""
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # removed in Python 3.13

        value = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        if value and value.startswith("$2"):
            return value
    except (ImportError, AttributeError, OSError):
        pass
    try:
        import bcrypt  # type: ignore[import-not-found]

        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    except ImportError:
        pass
    if shutil.which("htpasswd"):
        out = subprocess.run(
            ["htpasswd", "-nbBC", "4", "user", password], capture_output=True, text=True, check=True
        )
        return out.stdout.strip().split(":", 1)[1]
    raise NotSupportedError("cannot make bcrypt hashes for htpasswd: no crypt module, no bcrypt, no htpasswd")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalRegistry:
    """One running registry; `host` is 127.0.0.1:PORT, `url` its http:// base."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    users: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        """Stop the process this object started (only that pid), then remove its storage."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_config(workdir: Path, port: int, users: dict[str, str] | None) -> Path:
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {workdir / 'data'}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  secret: kdebug-local-test-only",
    ]
    if users:
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text(
            "".join(f"{user}:{bcrypt_hash(pw)}\n" for user, pw in users.items()), encoding="utf-8"
        )
        lines += ["auth:", "  htpasswd:", "    realm: kdebug-local", f"    path: {htpasswd}"]
    path = workdir / "config.yml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_registry(users: dict[str, str] | None = None, port: int | None = None) -> LocalRegistry:
    """Start `docker-registry serve` and wait until /v2/ answers (200, or 401 with auth)."""
    if not available():
        raise NotSupportedError("Debian's docker-registry is not installed (apt-get install docker-registry)")
    workdir = Path(tempfile.mkdtemp(prefix="kdebug-registry-"))
    registry = LocalRegistry(port=port or free_port(), workdir=workdir, users=dict(users or {}))
    config = write_config(workdir, registry.port, users)
    log = (workdir / "registry.log").open("wb")
    registry.process = subprocess.Popen(
        [REGISTRY_BINARY, "serve", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=child_dies_with_parent,  # a killed demo or test run leaves no registry behind
    )
    try:
        _wait_until_serving(registry)
    except BaseException:
        registry.stop()
        raise
    return registry


def _wait_until_serving(registry: LocalRegistry) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if registry.process is not None and registry.process.poll() is not None:
            tail = (registry.workdir / "registry.log").read_text(errors="replace")[-400:]
            raise StartFailedError(
                f"docker-registry exited with code {registry.process.returncode}: {tail.strip()}"
            )
        try:
            with urllib.request.urlopen(f"{registry.url}/v2/", timeout=1):
                return
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                return
        except OSError:
            pass
        time.sleep(0.05)  # polling a child process's port: there is no event to wait on
    raise StartFailedError(f"docker-registry did not answer on {registry.url} within {START_TIMEOUT_S:g}s")
