"""One exception class per bad input, each carrying exactly the message the CLI prints."""

from __future__ import annotations

import errno
import os
import pickle
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import zeroimage

# (name, build_image arguments, the same build as CLI arguments, exception class)
CASES: list[tuple[str, dict[str, Any], list[str], type[zeroimage.ZeroImageError]]] = [
    ("missing program", {"entrypoint": "./missing"}, ["./missing"], zeroimage.ProgramNotFoundError),
    ("directory", {"entrypoint": "./adir"}, ["./adir"], zeroimage.InvalidInputError),
    ("dynamic program", {"entrypoint": "./hello-dynamic"}, ["./hello-dynamic"], zeroimage.InvalidInputError),
    ("not an ELF", {"entrypoint": "./notes.txt"}, ["./notes.txt"], zeroimage.InvalidInputError),
    ("bad platform", {"platform": "linux"}, ["--platform", "linux"], zeroimage.InvalidInputError),
    ("unknown arch", {"platform": "linux/sparc"}, ["--platform", "linux/sparc"], zeroimage.InvalidInputError),
    (
        "arch mismatch",
        {"platform": "linux/arm64"},
        ["--platform", "linux/arm64"],
        zeroimage.InvalidInputError,
    ),
    ("bad output transport", {"output": "dir:x"}, ["-o", "dir:x"], zeroimage.UnsupportedError),
    ("script", {"entrypoint": "./script.sh"}, ["./script.sh"], zeroimage.InvalidInputError),
    (
        "arm64 program on amd64",
        {"entrypoint": "./hello-arm64", "platform": "linux/amd64"},
        ["./hello-arm64", "--platform", "linux/amd64"],
        zeroimage.InvalidInputError,
    ),
    ("empty output path", {"output": "oci-archive:"}, ["-o", "oci-archive:"], zeroimage.InvalidInputError),
    ("output is a directory", {"output": "adir"}, ["-o", "adir"], zeroimage.InvalidInputError),
    ("output dir missing", {"output": "nodir/x.tar"}, ["-o", "nodir/x.tar"], zeroimage.IoError),
    ("empty base", {"base": ""}, ["--from", ""], zeroimage.InvalidInputError),
    (
        "unknown builtin base",
        {"base": "builtin:nope"},
        ["--from", "builtin:nope"],
        zeroimage.InvalidInputError,
    ),
    ("bad tag", {"tag": "Bad Name"}, ["--tag", "Bad Name"], zeroimage.InvalidInputError),
    ("bad format", {"format": "tgz"}, ["--format", "tgz"], zeroimage.InvalidInputError),
    ("bad profile", {"profile": "gcp"}, ["--profile", "gcp"], zeroimage.InvalidInputError),
    ("relative path", {"path": "app/x"}, ["--path", "app/x"], zeroimage.InvalidInputError),
    (
        "bad compression",
        {"compression_level": 12},
        ["--compression-level", "12"],
        zeroimage.InvalidInputError,
    ),
    (
        "bad compression algorithm",
        {"compression": "brotli"},
        ["--compression", "brotli"],
        zeroimage.InvalidInputError,
    ),
    ("bad push ref", {"push": "Bad Name"}, ["--push", "Bad Name"], zeroimage.InvalidInputError),
    ("empty push ref", {"push": ["docker://"]}, ["--push", "docker://"], zeroimage.InvalidInputError),
    (
        "bad push digest",
        {"push": "localhost:5000/x@sha256:abc"},
        ["--push", "localhost:5000/x@sha256:abc"],
        zeroimage.InvalidInputError,
    ),
    (
        "second push ref bad",
        {"push": ["localhost:5000/x:1", "x:UPPER:case"]},
        ["--push", "localhost:5000/x:1", "--push", "x:UPPER:case"],
        zeroimage.InvalidInputError,
    ),
    (
        "unreachable registry",
        {"push": "127.0.0.1:1/x:1"},
        ["--push", "127.0.0.1:1/x:1"],
        zeroimage.NetworkError,
    ),
    ("bad creds", {"creds": "nopassword"}, ["--creds", "nopassword"], zeroimage.InvalidInputError),
    (
        "missing ca cert",
        {"push": "127.0.0.1:1/x:1", "ca_cert": "nope.pem"},
        ["--push", "127.0.0.1:1/x:1", "--ca-cert", "nope.pem"],
        zeroimage.IoError,
    ),
]


@pytest.fixture
def bad_inputs(workdir: Path, programs: dict[str, Path]) -> Path:
    (workdir / "adir").mkdir()
    (workdir / "notes.txt").write_text("not a program\n")
    shutil.copy2(programs["script"], workdir / "script.sh")
    return workdir


@pytest.mark.parametrize(("name", "kwargs", "cli_args", "cls"), CASES, ids=[c[0] for c in CASES])
def test_error_class_and_message_match_the_cli(
    bad_inputs: Path,
    rust_cli: Path,
    name: str,
    kwargs: dict[str, Any],
    cli_args: list[str],
    cls: type[zeroimage.ZeroImageError],
) -> None:
    kwargs = {"entrypoint": "./hello", **kwargs}
    before = sorted(os.listdir(bad_inputs))
    with pytest.raises(zeroimage.ZeroImageError) as info:
        zeroimage.build_image(kwargs.pop("entrypoint"), **kwargs)
    exc = info.value
    assert type(exc) is cls, f"{name}: {type(exc).__name__}: {exc}"
    assert exc.kind == cls.kind != ""
    assert str(exc) == exc.message
    assert sorted(os.listdir(bad_inputs)) == before, "a failed build wrote something"

    # The same input to the Rust CLI: exit code 1 and `error: <the same message>`, with the
    # options the message names spelled as flags there (`--allow-dynamic`, not `allow_dynamic=True`).
    argv = ["build", *cli_args] if cli_args[0].startswith("./") else ["build", "./hello", *cli_args]
    proc = subprocess.run([str(rust_cli), *argv], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == f"error: {cli_spelling(str(exc))}\n"


def cli_spelling(message: str) -> str:
    """A Python message with its keywords spelled as CLI flags: ``allow_dynamic=True`` →
    ``--allow-dynamic``, ``base=`` → ``--from``."""

    def flag(name: str) -> str:
        return "--" + ("from" if name == "base" else name.replace("_", "-"))

    message = re.sub(r"\b([a-z][a-z_]*)=True\b", lambda m: flag(m.group(1)), message)
    return re.sub(r"\b([a-z][a-z_]*)=(?=\s)", lambda m: flag(m.group(1)), message)


def test_missing_program_is_a_file_not_found_error(workdir: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        zeroimage.build_image("./nope")
    exc = info.value
    assert isinstance(exc, zeroimage.NotFoundError) and isinstance(exc, zeroimage.ZeroImageError)
    assert isinstance(exc, zeroimage.ProgramNotFoundError)
    assert exc.errno == errno.ENOENT
    assert exc.filename == "./nope"
    assert str(exc) == "program ./nope not found"
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is type(exc) and str(again) == str(exc) and again.filename == "./nope"


def test_messages_carry_hints(workdir: Path) -> None:
    with pytest.raises(zeroimage.InvalidInputError, match="allow_dynamic=True") as info:
        zeroimage.build_image("./hello-dynamic")
    assert "\n  hint: " in str(info.value)
    assert "interpreter /lib64/ld-linux-x86-64.so.2" in str(info.value)


def test_every_kind_has_its_class() -> None:
    kinds = {
        "invalid_input": zeroimage.InvalidInputError,
        "not_found": zeroimage.NotFoundError,
        "auth": zeroimage.AuthError,
        "registry": zeroimage.RegistryError,
        "network": zeroimage.NetworkError,
        "io": zeroimage.IoError,
        "integrity": zeroimage.IntegrityError,
        "unsupported": zeroimage.UnsupportedError,
        "cancelled": zeroimage.CancelledError,
    }
    for kind, cls in kinds.items():
        assert cls.kind == kind and issubclass(cls, zeroimage.ZeroImageError)
        exc = cls("boom")
        assert str(exc) == "boom" and pickle.loads(pickle.dumps(exc)).message == "boom"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tag": 5},
        {"tag": [5]},
        {"env": [1]},
        {"env": {"A": 1}},
        {"labels": {1: "a"}},
        {"args": "--flag"},
        {"output": 3},
        {"compression_level": "9"},
        {"push": 5},
        {"push": [b"x"]},
        {"ca_cert": 5},
        {"creds": 5},
        {"timeout": "10"},
        {"log": 5},
        {"progress": "print"},
    ],
    ids=repr,
)
def test_wrong_python_types_raise_type_errors(workdir: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError) as info:
        zeroimage.build_image("./hello", **kwargs)
    name = next(iter(kwargs))
    assert name in str(info.value)
    if name not in ("log", "progress"):
        assert isinstance(info.value, zeroimage.InvalidOptionError)
    assert not (workdir / "hello.tar").exists()


def test_jobs_must_be_positive(workdir: Path) -> None:
    with pytest.raises(zeroimage.InvalidInputError, match="jobs"):
        zeroimage.build_image("./hello", jobs=0)
    with pytest.raises(zeroimage.InvalidInputError, match="level"):
        zeroimage.build_image("./hello", compression="zstd", compression_level=20)
    assert not (workdir / "hello.tar").exists()


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_timeout_must_be_positive_seconds(workdir: Path, timeout: float) -> None:
    with pytest.raises(zeroimage.InvalidInputError, match="timeout"):
        zeroimage.build_image("./hello", timeout=timeout)
    assert not (workdir / "hello.tar").exists()


def test_creds_never_appear_in_errors(workdir: Path) -> None:
    with pytest.raises(zeroimage.InvalidInputError) as info:
        zeroimage.build_image("./hello", creds="secret-without-colon")
    assert "secret" not in str(info.value) and "<redacted>" in str(info.value)
