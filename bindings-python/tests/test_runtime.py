"""Images built from Python run on real runtimes: runc (via umoci) and Docker 20.10, both
driven by the project's test bed."""

from __future__ import annotations

from pathlib import Path

import pytest

import oci
import zeroimage
from conftest import Docker, Runc


def test_runs_with_runc(workdir: Path, runc: Runc) -> None:
    zeroimage.build_image(
        "./hello",
        output="oci:layout:py",
        env={"GREETING": "from runc"},
        args=["--env", "GREETING", "--cwd", "--uid", "one"],
        user="1234:5678",
        workdir="/tmp",
        path="/usr/local/bin/hello",
    )
    proc = runc.run(workdir / "layout", "py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == (
        "hello from zeroimage\nenv GREETING=from runc\ncwd=/tmp\nuid=1234 gid=5678\narg=one\n"
    )


def test_archive_runs_with_runc(workdir: Path, runc: Runc) -> None:
    """The default output (an OCI archive) is an image layout once untarred."""
    import tarfile

    zeroimage.build_image("./hello", tag="hello:py", args=["--argv0"])
    with tarfile.open(workdir / "hello.tar") as tar:
        tar.extractall(workdir / "untarred", filter="data")
    proc = runc.run(workdir / "untarred", "py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "hello from zeroimage\nargv0=/hello\n"


def test_runs_with_docker(workdir: Path, docker: Docker) -> None:
    result = zeroimage.build_image(
        "./hello",
        output="d.tar",
        tag="zeroimage-py/hello:1.0",
        env={"GREETING": "from docker"},
        args=["--env", "GREETING", "--cwd", "--uid"],
    )
    load = docker.docker("load", "-i", str(workdir / "d.tar"))
    assert load.returncode == 0, load.stderr
    assert "zeroimage-py/hello:1.0" in load.stdout
    inspect = docker.docker("image", "inspect", "--format", "{{.Id}}", "zeroimage-py/hello:1.0")
    assert inspect.stdout.strip() == result.config_digest
    run = ["run", "--rm", "--network", "none", "--pull", "never", "zeroimage-py/hello:1.0"]
    proc = docker.docker(*run)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello from zeroimage\nenv GREETING=from docker\ncwd=/\nuid=0 gid=0\n"
    # Arguments after the image replace the Cmd, as for any image.
    proc = docker.docker(*run, "y")
    assert proc.stdout == "hello from zeroimage\narg=y\n"


def test_docker_daemon_output(workdir: Path, docker: Docker, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any output string the core takes works from Python: here the Docker Engine itself."""
    monkeypatch.setenv("DOCKER_HOST", docker.host)
    result = zeroimage.build_image("./hello", output="docker-daemon:zeroimage-py/daemon:2", args=["--uid"])
    assert result.output == "docker-daemon:zeroimage-py/daemon:2"
    inspect = docker.docker("image", "inspect", "--format", "{{.Id}}", "zeroimage-py/daemon:2")
    assert inspect.stdout.strip() == result.config_digest, inspect.stderr
    proc = docker.docker("run", "--rm", "--network", "none", "--pull", "never", "zeroimage-py/daemon:2")
    assert proc.stdout == "hello from zeroimage\nuid=0 gid=0\n", proc.stderr


def test_builtin_static_base_runs_with_runc(workdir: Path, runc: Runc) -> None:
    """`base=` takes any base string the core parses; builtin:static adds its own layer(s)
    and a default user under the program's layer."""
    result = zeroimage.build_image("./hello", base="builtin:static", output="oci:layout:b", args=["--uid"])
    image = oci.read_layout(workdir / "layout")
    assert image.manifest_digest == result.digest
    assert len(image.layers) >= 2 and list(image.layer_members()) == ["hello"]
    user = image.config["config"]["User"]
    proc = runc.run(workdir / "layout", "b")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"hello from zeroimage\nuid={user.split(':')[0]} ")
