"""Fixtures: test programs built with gcc, the Rust CLI, a private Docker engine, runc."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent  # bindings-python/
ROOT = PACKAGE.parent  # the workspace
DOCKER_CLIENT = "/usr/bin/docker"  # Debian's 20.10 client, not a newer one earlier on PATH
BIG_PROGRAM_MIB = 64


def require_tool(name: str) -> str:
    """The tool's path; a missing tool fails the test (never skips it)."""
    path = shutil.which(name) if "/" not in name else (name if os.access(name, os.X_OK) else None)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/install-test-deps.sh (as root)", pytrace=False)
    return path


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run `cmd`, fail the test with its output unless it exits 0."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        pytest.fail(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{"static", "dynamic", "big"}: the test program linked statically, dynamically, and a
    static copy padded to 64 MiB of incompressible bytes (still a valid ELF executable)."""
    gcc = require_tool("gcc")
    out = tmp_path_factory.mktemp("programs")
    source = HERE / "fixtures" / "hello.c"
    run([gcc, "-static", "-O2", "-o", str(out / "hello"), str(source)])
    run([gcc, "-O2", "-o", str(out / "hello-dynamic"), str(source)])
    big = out / "big"
    shutil.copyfile(out / "hello", big)
    with open(big, "ab") as f:
        for _ in range(BIG_PROGRAM_MIB):
            f.write(os.urandom(1 << 20))
    big.chmod(0o755)
    return {"static": out / "hello", "dynamic": out / "hello-dynamic", "big": big}


@pytest.fixture
def workdir(tmp_path: Path, programs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh current directory holding ./hello (static) and ./hello-dynamic."""
    shutil.copy2(programs["static"], tmp_path / "hello")
    shutil.copy2(programs["dynamic"], tmp_path / "hello-dynamic")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def rust_cli() -> Path:
    """The Rust `zeroimage` binary, built from this checkout."""
    cargo = require_tool("cargo")
    run([cargo, "build", "--quiet", "-p", "zeroimage", "--bin", "zeroimage"], cwd=ROOT)
    meta = json.loads(run([cargo, "metadata", "--no-deps", "--format-version", "1"], cwd=ROOT).stdout)
    return Path(meta["target_directory"]) / "debug" / "zeroimage"


def runc_run(archive: Path, scratch: Path, tag: str = "latest") -> subprocess.CompletedProcess[str]:
    """Run the image in an OCI archive with umoci + runc; return the finished process."""
    umoci = require_tool("umoci")
    runc = require_tool("runc")
    layout = scratch / "layout"
    layout.mkdir()
    import tarfile

    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")
    bundle = scratch / "bundle"
    run([umoci, "unpack", "--image", f"{layout}:{tag}", str(bundle)])
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["terminal"] = False
    config_path.write_text(json.dumps(config))
    state = scratch / "runc-state"
    name = f"zeroimage-py-{uuid.uuid4().hex[:12]}"
    try:
        return subprocess.run(
            [runc, "--root", str(state), "run", "-b", str(bundle), name],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    finally:
        subprocess.run([runc, "--root", str(state), "delete", "--force", name], capture_output=True)


class Docker:
    """A private dockerd (20.10) with its own directories and socket."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.client_config = root / "client"
        self.client_config.mkdir()
        (self.client_config / "config.json").write_text("{}\n")
        (root / "daemon.json").write_text("{}\n")
        self.log = open(root / "dockerd.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                require_tool("dockerd"),
                "--config-file", str(root / "daemon.json"),
                "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
                "--data-root", str(root / "data"),
                "--exec-root", str(root / "exec"),
                "--pidfile", str(root / "dockerd.pid"),
                "--host", f"unix://{self.socket}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while self.docker("info").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"dockerd did not start:\n{(root / 'dockerd.log').read_text()[-4000:]}")
            time.sleep(0.5)

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
        env["DOCKER_CONFIG"] = str(self.client_config)
        return subprocess.run(
            [require_tool(DOCKER_CLIENT), "-H", f"unix://{self.socket}", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        """Stop exactly the daemon this object started (by PID), and wait for it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    require_tool(DOCKER_CLIENT)
    # A short path: the socket path must fit in sockaddr_un.
    root = Path(tempfile.mkdtemp(prefix="zi-py-docker-"))
    daemon = Docker(root)
    try:
        yield daemon
    finally:
        daemon.stop()
        subprocess.run(["rm", "-rf", str(root)], capture_output=True)
