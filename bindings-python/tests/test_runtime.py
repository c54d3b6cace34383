"""Images built from Python run on real runtimes: runc (via umoci) and Docker 20.10."""

from __future__ import annotations

from pathlib import Path

import zeroimage
from conftest import Docker, runc_run


def test_runs_with_runc(workdir: Path, tmp_path_factory: object) -> None:
    zeroimage.build_image(
        "./hello",
        output="r.tar",
        env={"GREETING": "from runc"},
        args=["one", "two"],
        user="1234",
        workdir="/tmp",
        path="/usr/local/bin/hello",
    )
    proc = runc_run(workdir / "r.tar", workdir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello from zeroimage\narg: one\narg: two\nGREETING=from runc\ncwd=/tmp\nuid=1234\n"


def test_runs_with_docker(workdir: Path, docker: Docker) -> None:
    result = zeroimage.build_image(
        "./hello",
        output="d.tar",
        tag="zeroimage-py/hello:1.0",
        env={"GREETING": "from docker"},
        args=["x"],
    )
    load = docker.docker("load", "-i", str(workdir / "d.tar"))
    assert load.returncode == 0, load.stderr
    assert "zeroimage-py/hello:1.0" in load.stdout
    inspect = docker.docker("image", "inspect", "--format", "{{.Id}}", "zeroimage-py/hello:1.0")
    assert inspect.stdout.strip() == result.config_digest
    run = docker.docker("run", "--rm", "--network", "none", "--pull", "never", "zeroimage-py/hello:1.0")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "hello from zeroimage\narg: x\nGREETING=from docker\ncwd=/\nuid=0\n"
    # Arguments after the image replace the Cmd, as for any image.
    run = docker.docker("run", "--rm", "--network", "none", "--pull", "never", "zeroimage-py/hello:1.0", "y")
    assert run.stdout.startswith("hello from zeroimage\narg: y\nGREETING")
