"""Packaging: version, typing (stubtest, mypy), README snippets, the wheel."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import tomllib

import zeroimage
from conftest import PACKAGE, ROOT, Binaries, start_registry

# README snippets that push or log in run against a private registry with this user, with
# `registry.example.com` replaced by its address: the snippet is otherwise run as written.
README_REGISTRY = "registry.example.com"
README_USER = "me:secret-token"


def test_version_is_the_workspace_version() -> None:
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    assert zeroimage.__version__ == workspace
    assert importlib.metadata.version("zeroimage") == workspace


def test_native_module_is_private_and_free_threading_ready() -> None:
    from zeroimage import _zeroimage

    assert _zeroimage.__name__ == "zeroimage._zeroimage"
    assert zeroimage.build_image is _zeroimage.build_image
    assert zeroimage.BuildResult.__module__ == "zeroimage._zeroimage"
    assert (Path(zeroimage.__file__).parent / "py.typed").exists()
    assert (Path(zeroimage.__file__).parent / "_zeroimage.pyi").exists()


def test_stub_matches_the_native_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "zeroimage._zeroimage"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_package_and_its_use_type_check_strictly(tmp_path: Path) -> None:
    usage = tmp_path / "usage.py"
    usage.write_text(
        "import zeroimage\n"
        "def f(p: zeroimage.Progress) -> None: print(p.stage, p.current, p.total)\n"
        "r: zeroimage.BuildResult = zeroimage.build_image('x', tag=['a'], env={'A': 'b'}, progress=f)\n"
        "d: str = r.digest\n"
        "n: int = r.size + zeroimage.main(['--help'])\n"
        "r = zeroimage.build_image('x', push=['a', 'b'], ca_cert=['c.pem'], creds='u:p', timeout=1.5, log=print)\n"
        "p: list[str] = r.pushed\n"
        "s: str = zeroimage.login('reg', 'u', 'p', insecure=True, ca_cert='c.pem')\n"
        "b: bool = zeroimage.logout('reg')\n"
        "w: zeroimage.BuildResult = zeroimage.write_base(output='s.tar', tag='s:1', format='docker')\n"
        "i = zeroimage.Image.from_base('builtin:static', platform='linux/amd64', jobs=2, log=print)\n"
        "i.add_files(['./a:/srv/a', {'src': 'b', 'dest': '/b', 'owner': '1'}], follow_symlinks=True)\n"
        "i.add_program('x', '/app/x', cancel=zeroimage.CancelToken())\n"
        "i.set_env('A', 'b')\n"
        "w = i.write('o.tar', push=['r/x:1'], tag='t:1')\n"
        "r = zeroimage.build_image('x', add='a:/b', add_owner='1', env=['A=1'], source_date_epoch=0)\n"
        "import zeroimage.aio\n"
        "async def g() -> str:\n"
        "    return (await zeroimage.aio.build_image('x', add=['a:/b'])).digest\n"
    )
    for target in (["-p", "zeroimage"], [str(usage)]):
        proc = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *target],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import zeroimage\nzeroimage.build_image('x', tag=3)\n"
        "zeroimage.build_image('x', compression='gzp')\n"
        "zeroimage.build_image('x', bse='scratch')\n"
        "zeroimage.Image.from_base('scratch', output='x.tar')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 1 and "tag" in proc.stdout, proc.stdout
    for line in (2, 3, 4, 5):
        assert f"bad.py:{line}:" in proc.stdout, proc.stdout


def readme_snippets() -> list[tuple[str, int, str]]:
    out = []
    for readme in (PACKAGE / "README.md", ROOT / "README.md"):
        if not readme.exists():  # the root README may have none yet
            continue
        text = readme.read_text()
        for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
            line = text[: m.start()].count("\n") + 1
            out.append((str(readme.relative_to(ROOT)), line, m.group(1)))
    return out


SNIPPETS = readme_snippets()


def test_the_package_readme_has_snippets() -> None:
    assert sum(1 for name, _, _ in SNIPPETS if name.startswith("bindings-python")) >= 5


@pytest.mark.parametrize(("readme", "line", "code"), SNIPPETS, ids=[f"{r}:{n}" for r, n, _ in SNIPPETS])
def test_readme_snippet_runs(
    workdir: Path, binaries: Binaries, docker_config: Path, readme: str, line: int, code: str
) -> None:
    def run(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
        )

    if "push=" in code or ".login(" in code:
        with start_registry(binaries, "--auth", README_USER) as registry:
            proc = run(code.replace(README_REGISTRY, registry["addr"]))
            if proc.returncode == 0 and "push=" in code:
                # print(result.pushed): REF@DIGEST at the test registry
                pushed = f"['{registry['addr']}/me/hello@sha256:"
                assert any(line.startswith(pushed) for line in proc.stdout.splitlines()), proc.stdout
    else:
        proc = run(code)
    assert proc.returncode == 0, f"{readme}:{line}\n{code}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def test_maturin_wheel_installs_in_a_fresh_venv(tmp_path: Path, programs: dict[str, Path]) -> None:
    """`maturin build --release -m bindings-python/Cargo.toml` → an abi3 wheel that
    `pip install`s into a new virtual environment and works there."""
    maturin = shutil.which("maturin", path=str(Path(sys.executable).parent)) or shutil.which("maturin")
    assert maturin, "maturin is not installed (bindings-python/scripts/test.sh installs it)"
    wheels = tmp_path / "wheels"
    proc = subprocess.run(
        [maturin, "build", "--release", "-m", "bindings-python/Cargo.toml", "-o", str(wheels)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    [wheel] = wheels.glob("*.whl")
    assert re.fullmatch(
        rf"zeroimage-{re.escape(zeroimage.__version__)}-cp310-abi3-.*linux.*\.whl", wheel.name
    ), wheel
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True
    )
    assert pip.returncode == 0, pip.stderr
    shutil.copy2(programs["static"], tmp_path / "hello")
    check = subprocess.run(
        [
            str(python),
            "-c",
            "import zeroimage; r = zeroimage.build_image('./hello', output='w.tar'); print(r.digest)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"},
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("sha256:")
    script = subprocess.run([str(env_dir / "bin" / "zeroimage"), "--version"], capture_output=True, text=True)
    assert script.stdout == f"zeroimage {zeroimage.__version__}\n"
