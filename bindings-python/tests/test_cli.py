"""`python -m zeroimage`, the `zeroimage` console script and `zeroimage.main` are the Rust CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import oci
import zeroimage


def console_script() -> str:
    # Installed next to the interpreter running the tests.
    path = Path(sys.executable).parent / "zeroimage"
    assert path.exists(), f"the console script is not installed at {path}"
    return str(path)


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [["--help"], ["build", "--help"], ["--version"]], ids=" ".join)
def test_help_and_version_equal_the_rust_cli(rust_cli: Path, args: list[str]) -> None:
    rust = run([str(rust_cli), *args])
    assert rust.returncode == 0
    for argv in ([sys.executable, "-m", "zeroimage", *args], [console_script(), *args]):
        proc = run(argv)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, rust.stdout, rust.stderr), argv
    if args == ["--version"]:
        assert rust.stdout == f"zeroimage {zeroimage.__version__}\n"
    else:
        assert "Usage: zeroimage" in rust.stdout


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["build"], ["build", "./hello", "--no-such-flag"]])
def test_usage_errors_exit_2_like_the_rust_cli(workdir: Path, rust_cli: Path, args: list[str]) -> None:
    rust = run([str(rust_cli), *args])
    assert rust.returncode == 2
    for argv in ([sys.executable, "-m", "zeroimage", *args], [console_script(), *args]):
        proc = run(argv)
        assert (proc.returncode, proc.stdout, proc.stderr) == (2, rust.stdout, rust.stderr), argv


def test_console_script_builds_the_same_image_as_the_api(workdir: Path) -> None:
    proc = run(
        [console_script(), "build", "./hello", "-o", "cli.tar", "-t", "hello:cli", "--json"], cwd=workdir
    )
    assert proc.returncode == 0, proc.stderr
    import json

    doc = json.loads(proc.stdout)
    api = zeroimage.build_image("./hello", output="api.tar", tag="hello:cli")
    assert doc["digest"] == api.digest == oci.read_archive(workdir / "cli.tar").manifest_digest
    assert doc["config_digest"] == api.config_digest
    assert (doc["size"], doc["platform"], doc["tags"]) == (api.size, api.platform, api.tags)
    assert (workdir / "cli.tar").read_bytes() == (workdir / "api.tar").read_bytes()


def test_python_m_reports_build_errors_like_the_rust_cli(workdir: Path, rust_cli: Path) -> None:
    args = ["build", "./hello", "--platform", "linux/arm64"]
    rust = run([str(rust_cli), *args], cwd=workdir)
    proc = run([sys.executable, "-m", "zeroimage", *args], cwd=workdir)
    assert rust.returncode == proc.returncode == 1
    assert proc.stderr == rust.stderr and proc.stderr.startswith("error: program ./hello is built for amd64")


def test_main_in_process(workdir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    print("before", flush=False)
    code = zeroimage.main(["build", "./hello", "-o", "m.tar", "--quiet"])
    out, err = capfd.readouterr()
    assert code == 0, err
    digest = oci.read_archive(workdir / "m.tar").manifest_digest
    # Python's buffered output comes first: main() flushes before the CLI writes to fd 1.
    assert out == f"before\n{digest}\n"
    assert zeroimage.main([workdir / "nope" / "x"]) == 2  # os.PathLike arguments; not a subcommand
    assert zeroimage.main(["build", Path("missing")]) == 1
    assert capfd.readouterr().err.endswith("error: program missing not found\n")


def test_main_defaults_to_sys_argv(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["zeroimage", "build", "./hello", "-o", "argv.tar", "-q"])
    assert zeroimage.main() == 0
    assert (workdir / "argv.tar").exists()


def test_console_script_ctrl_c_exits_130(tmp_path: Path, programs: dict[str, Path]) -> None:
    import signal
    import time

    big = tmp_path / "big"
    shutil.copy2(programs["big"], big)
    proc = subprocess.Popen(
        [console_script(), "build", str(big), "-o", str(tmp_path / "c.tar")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.3)  # the interpreter is up and the build under way
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "error: build cancelled; nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big"]
