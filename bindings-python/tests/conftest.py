"""Fixtures. The test programs, runc and the private Docker engine come from the project's
test bed (`zeroimage-testbed`, crate `tests/`), shared with the Rust and Node suites."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent  # bindings-python/
ROOT = PACKAGE.parent  # the workspace
BIG_PROGRAM_MIB = 64
INSTALL_HINT = "run scripts/install-test-deps.sh (as root)"


def require_tool(name: str) -> str:
    """The tool's path; a missing tool fails the test (never skips it)."""
    path = shutil.which(name) if "/" not in name else (name if os.access(name, os.X_OK) else None)
    if path is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
    return path


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run `cmd`, fail the test with its output unless it exits 0."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        pytest.fail(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Binaries:
    zeroimage: Path  # the Rust CLI
    testbed: Path  # zeroimage-testbed


@pytest.fixture(scope="session")
def binaries() -> Binaries:
    """The Rust CLI and the test bed, built from this checkout."""
    cargo = require_tool("cargo")
    run(
        [cargo, "build", "--quiet", "-p", "zeroimage", "--bin", "zeroimage"]
        + ["-p", "zeroimage-tests", "--bin", "zeroimage-testbed"],
        cwd=ROOT,
    )
    meta = json.loads(run([cargo, "metadata", "--no-deps", "--format-version", "1"], cwd=ROOT).stdout)
    debug = Path(meta["target_directory"]) / "debug"
    return Binaries(debug / "zeroimage", debug / "zeroimage-testbed")


@pytest.fixture(scope="session")
def rust_cli(binaries: Binaries) -> Path:
    return binaries.zeroimage


@pytest.fixture(scope="session")
def programs(binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test bed's programs ("static", "dynamic", "arm64", "script", "riscv64_header", …)
    plus "big": the static one padded with 64 MiB of incompressible bytes (still a valid ELF
    executable), so that a build takes seconds."""
    out = tmp_path_factory.mktemp("programs")
    made = json.loads(run([str(binaries.testbed), "hello", str(out)]).stdout)
    found = {name: Path(path) for name, path in made.items() if name != "hello_line"}
    big = out / "big"
    shutil.copyfile(found["static"], big)
    with open(big, "ab") as f:
        for _ in range(BIG_PROGRAM_MIB):
            f.write(os.urandom(1 << 20))
    big.chmod(0o755)
    found["big"] = big
    return found


@pytest.fixture
def workdir(tmp_path: Path, programs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh current directory holding ./hello (static), ./hello-dynamic, ./hello-arm64."""
    for name in ("static", "dynamic", "arm64"):
        shutil.copy2(programs[name], tmp_path / programs[name].name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def runc(binaries: Binaries) -> Runc:
    require_tool("umoci")
    require_tool("runc")
    return Runc(binaries.testbed)


@dataclass(frozen=True)
class Runc:
    testbed: Path

    def run(self, layout: Path, tag: str, *args: str) -> subprocess.CompletedProcess[str]:
        """umoci unpack LAYOUT:TAG + runc run (the test bed's `runc-run`); `args`, when given,
        replace the whole argv."""
        return subprocess.run(
            [str(self.testbed), "runc-run", str(layout), tag, *args],
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )


@dataclass(frozen=True)
class Docker:
    host: str
    client: str  # /usr/bin/docker: Debian's 20.10 client, not a newer one earlier on PATH
    config: Path  # DOCKER_CONFIG: an empty client configuration

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
        env["DOCKER_CONFIG"] = str(self.config)
        return subprocess.run(
            [self.client, "-H", self.host, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture(scope="session")
def docker(binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    """A private dockerd 20.10 started by the test bed; it stops (by PID) when its stdin closes."""
    require_tool("dockerd")
    require_tool("/usr/bin/docker")
    proc = subprocess.Popen(
        [str(binaries.testbed), "docker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"zeroimage-testbed docker could not start dockerd (exit {proc.wait()})")
        info = json.loads(line)
        config = tmp_path_factory.mktemp("docker-config")
        (config / "config.json").write_text("{}\n")
        yield Docker(info["host"], info["docker"], config)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=120)


@contextmanager
def start_registry(binaries: Binaries, *flags: str) -> Iterator[dict[str, Any]]:
    """A private docker-registry from the test bed (`registry [--auth U:P] [--tls]`): yields its
    JSON description (`addr`, `ca_cert`, `flags` for skopeo, …); stopped (by PID) on exit."""
    require_tool("docker-registry")
    proc = subprocess.Popen(
        [str(binaries.testbed), "registry", *flags], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"zeroimage-testbed registry could not start docker-registry (exit {proc.wait()})")
        yield json.loads(line)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=60)


@pytest.fixture
def docker_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty credential home for this process and its children: `DOCKER_CONFIG`
    (no config.json yet), no `REGISTRY_AUTH_FILE`, no podman auth file."""
    home = tmp_path_factory.mktemp("home")
    config = home / "docker"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    return config
