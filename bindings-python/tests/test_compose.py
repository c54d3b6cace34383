"""Files beside the program (`add=`), the `Image` object API, the one option schema (unknown
keywords, shapes, bounds), cancellation (`cancel=`, `zeroimage.aio`) and `IoError` as an
`OSError`. Images run with umoci + runc; archives are read with tarfile + hashlib + json."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import oci
import zeroimage
import zeroimage.aio
from conftest import Runc

NONROOT = "uid=65532 gid=65532"


@pytest.fixture
def assets(workdir: Path) -> Path:
    """./assets (a directory with a nested file and a relative symlink) and ./config.txt."""
    (workdir / "assets" / "sub").mkdir(parents=True)
    (workdir / "assets" / "greeting.txt").write_text("hello from an asset\n")
    (workdir / "assets" / "sub" / "deep.txt").write_text("deep\n")
    os.symlink("greeting.txt", workdir / "assets" / "link.txt")
    (workdir / "config.txt").write_text("debug = false\n")
    return workdir / "assets"


def layer_digests(image: oci.Image) -> list[str]:
    return [layer["digest"] for layer in image.manifest["layers"]]


def test_added_files_are_read_at_run_time_by_the_nonroot_user(
    workdir: Path, assets: Path, runc: Runc
) -> None:
    result = zeroimage.build_image(
        "./hello",
        base="builtin:static",
        add=["./assets:/srv/assets", {"src": "config.txt", "dest": "/etc/app/config.txt"}],
        output="oci:layout:add",
        args=["--uid", "--cat", "/srv/assets/greeting.txt", "--cat", "/srv/assets/link.txt"]
        + ["--cat", "/srv/assets/sub/deep.txt", "--cat", "/etc/app/config.txt"],
    )
    proc = runc.run(workdir / "layout", "add")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == (
        f"hello from zeroimage\n{NONROOT}\nhello from an asset\nhello from an asset\ndeep\ndebug = false\n"
    )

    image = oci.read_layout(workdir / "layout")
    assert image.manifest_digest == result.digest
    assert len(image.layers) == 3, "base, assets, program"
    assets_layer = image.layer_members(1)
    assert sorted(assets_layer) == [
        "etc",
        "etc/app",
        "etc/app/config.txt",
        "srv",
        "srv/assets",
        "srv/assets/greeting.txt",
        "srv/assets/link.txt",
        "srv/assets/sub",
        "srv/assets/sub/deep.txt",
    ]
    link, _ = assets_layer["srv/assets/link.txt"]
    assert link.issym() and link.linkname == "greeting.txt"
    for member, _ in assets_layer.values():
        assert (member.uid, member.gid, member.uname, member.gname, member.mtime) == (0, 0, "", "", 0)
        assert member.mode & 0o7777 in (0o755, 0o644, 0o777)
    assert sorted(image.layer_members(2)) == ["hello"], "the program's layer is on top, alone"
    history = [h["created_by"] for h in image.config["history"]]
    assert "ADD ./assets:/srv/assets config.txt:/etc/app/config.txt" in history[-2]


def test_an_asset_change_leaves_the_program_layer_as_it_was(workdir: Path, assets: Path) -> None:
    first = zeroimage.build_image("./hello", add="./assets:/srv/assets", output="a.tar")
    (assets / "greeting.txt").write_text("changed\n")
    second = zeroimage.build_image("./hello", add="./assets:/srv/assets", output="b.tar")
    a, b = oci.read_archive(workdir / "a.tar"), oci.read_archive(workdir / "b.tar")
    assert first.digest != second.digest
    assert layer_digests(a)[0] != layer_digests(b)[0], "the assets layer changed"
    assert layer_digests(a)[1] == layer_digests(b)[1], "the program layer did not"


def test_added_files_do_not_depend_on_the_host(workdir: Path, assets: Path) -> None:
    """Another checkout of the same files (other mtimes, modes from another umask) gives the
    same bytes."""
    first = zeroimage.build_image("./hello", add="./assets:/srv/assets", output="a.tar", source_date_epoch=5)
    other = workdir / "other"
    shutil.copytree(assets, other, symlinks=True)
    for path in other.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (1_000_000_000, 1_000_000_000))
            path.chmod(0o700 if path.is_dir() else 0o600)
    second = zeroimage.build_image("./hello", add="./other:/srv/assets", output="b.tar", source_date_epoch=5)
    a, b = oci.read_archive(workdir / "a.tar"), oci.read_archive(workdir / "b.tar")
    assert layer_digests(a)[0] == layer_digests(b)[0]
    assert {m.mtime for m, _ in a.layer_members(0).values()} == {5}
    assert first.digest != second.digest, "only the history line (the SRC) differs"


@pytest.mark.parametrize(
    ("add", "fragment"),
    [
        ("./missing:/srv/x", "does not exist"),
        ("./assets:srv/x", "expected SRC:DEST"),
        ("./assets:/srv/../etc", "normalised"),
        ("./config.txt:/hello", "where the program goes"),
        (["./config.txt:/a", "./config.txt:/a"], "also added"),
        ({"src": "./assets", "dest": "/srv", "colour": "red"}, "{src, dest}"),
    ],
    ids=repr,
)
def test_bad_adds_raise_and_write_nothing(workdir: Path, assets: Path, add: Any, fragment: str) -> None:
    before = sorted(os.listdir(workdir))
    with pytest.raises(zeroimage.InvalidInputError, match="add") as info:
        zeroimage.build_image("./hello", add=add, output="x.tar")
    assert fragment in str(info.value)
    assert sorted(os.listdir(workdir)) == before


def test_symlinks_leaving_the_source_are_refused_unless_followed(workdir: Path, assets: Path) -> None:
    os.symlink("../config.txt", assets / "escape")
    with pytest.raises(zeroimage.InvalidInputError, match="outside") as info:
        zeroimage.build_image("./hello", add="./assets:/srv/assets", output="x.tar")
    assert "follow_symlinks" in str(info.value)
    zeroimage.build_image("./hello", add="./assets:/srv/assets", add_follow_symlinks=True, output="x.tar")
    member, data = oci.read_archive(workdir / "x.tar").layer_members(0)["srv/assets/escape"]
    assert member.isfile() and data == b"debug = false\n"


def test_add_owner(workdir: Path, assets: Path) -> None:
    zeroimage.build_image("./hello", add="./assets:/srv/assets", add_owner="65532", output="x.tar")
    members = oci.read_archive(workdir / "x.tar").layer_members(0)
    assert (members["srv"][0].uid, members["srv/assets"][0].uid) == (0, 65532), "DEST's parents stay root's"
    assert members["srv/assets/greeting.txt"][0].gid == 65532


# ----- the option schema: unknown keywords, shapes, bounds, hints -----


def test_unknown_keywords_name_the_nearest_option(workdir: Path) -> None:
    with pytest.raises(zeroimage.InvalidOptionError, match="did you mean base") as info:
        zeroimage.build_image("./hello", bse="scratch")
    assert isinstance(info.value, TypeError) and isinstance(info.value, zeroimage.InvalidInputError)
    with pytest.raises(TypeError, match="allow_dynamic"):
        zeroimage.build_image("./hello", allow_dynamik=True)
    assert not (workdir / "hello.tar").exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"jobs": 4294967295},
        {"jobs": 0},
        {"jobs": -1},
        {"jobs": 257},
        {"compression_level": -3},
        {"compression_level": 4294967296},
        {"source_date_epoch": 253402300800},
        {"source_date_epoch": -1},
        {"timeout": 0},
        {"timeout": 1e300},
    ],
    ids=repr,
)
def test_numbers_out_of_bounds_raise_invalid_input(workdir: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(zeroimage.InvalidInputError) as info:
        zeroimage.build_image("./hello", **kwargs)
    assert not isinstance(info.value, TypeError), "a bound, not a type"
    assert not (workdir / "hello.tar").exists()


def test_numbers_too_large_for_any_option_raise_too(workdir: Path) -> None:
    with pytest.raises(zeroimage.InvalidOptionError, match="too large"):
        zeroimage.build_image("./hello", jobs=2**70)


def test_the_largest_values_are_accepted(workdir: Path) -> None:
    result = zeroimage.build_image("./hello", jobs=256, source_date_epoch=253402300799, output="max.tar")
    assert oci.read_archive(workdir / "max.tar").config["created"] == "9999-12-31T23:59:59Z"
    assert result.digest.startswith("sha256:")


def test_hints_name_python_keywords(workdir: Path) -> None:
    with pytest.raises(zeroimage.InvalidInputError) as info:
        zeroimage.build_image("./hello-dynamic")
    message = str(info.value)
    assert "allow_dynamic=True" in message and "--allow-dynamic" not in message


def test_env_as_key_value_strings(workdir: Path) -> None:
    zeroimage.build_image("./hello", env=["A=1", "B=x=y"], labels=["team=build"], output="e.tar")
    config = oci.read_archive(workdir / "e.tar").config["config"]
    assert config["Env"][-2:] == ["A=1", "B=x=y"] and config["Labels"] == {"team": "build"}


# ----- IoError is an OSError -----


def test_io_errors_are_os_errors(workdir: Path) -> None:
    with pytest.raises(OSError) as info:
        zeroimage.build_image("./hello", output="nodir/x.tar")
    exc = info.value
    assert isinstance(exc, zeroimage.IoError) and exc.kind == "io"
    assert exc.errno == errno.ENOENT
    assert exc.filename == "nodir"
    assert str(exc) == "cannot write into nodir: entity not found"
    import pickle

    again = pickle.loads(pickle.dumps(exc))
    assert (type(again), again.errno, again.filename, str(again)) == (
        type(exc),
        exc.errno,
        exc.filename,
        str(exc),
    )


# ----- cancellation -----


def test_a_cancel_token_stops_a_running_build(tmp_path: Path, programs: dict[str, Path]) -> None:
    token = zeroimage.CancelToken()
    assert not token.cancelled

    def cancel_midway(event: zeroimage.Progress) -> None:
        if event.stage == "layer" and event.current > 0:
            threading.Thread(target=token.cancel).start()

    with pytest.raises(zeroimage.CancelledError, match="nothing was written"):
        zeroimage.build_image(
            programs["big"], output=str(tmp_path / "c.tar"), cancel=token, progress=cancel_midway
        )
    assert token.cancelled
    assert list(tmp_path.iterdir()) == [], "no output, no temporary file"


def test_a_threading_event_cancels_too(tmp_path: Path, programs: dict[str, Path]) -> None:
    event = threading.Event()
    timer = threading.Timer(0.2, event.set)
    timer.start()
    with pytest.raises(zeroimage.CancelledError):
        zeroimage.build_image(
            programs["big"], output=str(tmp_path / "e.tar"), cancel=event, compression_level=9
        )
    timer.join()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match="cancel"):
        zeroimage.build_image(programs["big"], cancel="now")


def big_program(directory: Path, programs: dict[str, Path], mib: int) -> Path:
    path = directory / "big256"
    shutil.copyfile(programs["static"], path)
    with open(path, "ab") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    path.chmod(0o755)
    return path


def test_aio_cancelling_the_task_cancels_a_256_mib_build(
    tmp_path: Path, programs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out, tmp = tmp_path / "src", tmp_path / "out", tmp_path / "tmp"
    for d in (src, out, tmp):
        d.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    program = big_program(src, programs, 256)
    started = threading.Event()

    async def main() -> tuple[int, float]:
        ticks = 0
        task = asyncio.create_task(
            zeroimage.aio.build_image(
                program,
                output=str(out / "big.tar"),
                compression_level=9,
                progress=lambda e: e.current > (8 << 20) and started.set(),
            )
        )
        while not started.is_set():
            await asyncio.sleep(0.01)
            ticks += 1
            assert not task.done(), task
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return ticks, time.monotonic() - t0

    ticks, stopped_in = asyncio.run(main())
    print(f"the loop ticked {ticks} times during the build; the cancelled task ended in {stopped_in:.2f}s")
    assert ticks > 5, "the event loop kept running"
    assert sorted(os.listdir(out)) == [] and sorted(os.listdir(tmp)) == [], "no output, no temp files"
    assert sorted(os.listdir(src)) == ["big256"]


def test_aio_mirrors_the_sync_api(workdir: Path, docker_config: Path) -> None:
    async def main() -> tuple[zeroimage.BuildResult, zeroimage.BuildResult, bool]:
        built = await zeroimage.aio.build_image("./hello", output="aio.tar", tag="aio:1")
        base = await zeroimage.aio.write_base("builtin:static", output="static.tar")
        erased = await zeroimage.aio.logout("registry.example.com")
        return built, base, erased

    built, base, erased = asyncio.run(main())
    assert built.digest == zeroimage.build_image("./hello", output="sync.tar", tag="aio:1").digest
    assert base.digest == zeroimage.write_base("builtin:static", output="static2.tar").digest
    assert erased is False
    with pytest.raises(zeroimage.InvalidOptionError, match="bse"):
        asyncio.run(zeroimage.aio.build_image("./hello", bse="x"))
    with pytest.raises(TypeError, match="cancel the task"):
        asyncio.run(zeroimage.aio.build_image("./hello", cancel=zeroimage.CancelToken()))


# ----- the Image object API -----


def test_image_api_builds_an_image_that_runs(workdir: Path, assets: Path, runc: Runc) -> None:
    image = zeroimage.Image.from_base("builtin:static", platform="linux/amd64", source_date_epoch=7)
    assert (image.platform, image.format, image.layer_count) == ("linux/amd64", "oci", 1)
    image.add_files("./assets:/srv/assets", owner="65532")
    image.add_files({"src": Path("config.txt"), "dest": "/etc/app/config.txt"})
    image.add_program("./hello", "/app/hello")
    image.set_cmd(["--uid", "--env", "GREETING", "--cwd", "--cat", "/srv/assets/greeting.txt"])
    image.set_env("GREETING", "from the image api")
    image.set_workdir("/srv")
    image.set_label("org.example.team", "py")
    image.set_annotation("org.example.note", "composed")
    assert image.layer_count == 4
    result = image.write("oci:layout:api", tag="api:1")
    assert result.outputs == ["oci:layout:api"] and result.platform == "linux/amd64"

    proc = runc.run(workdir / "layout", "api")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == (
        f"hello from zeroimage\n{NONROOT}\nenv GREETING=from the image api\ncwd=/srv\nhello from an asset\n"
    )
    read = oci.read_layout(workdir / "layout")
    assert read.manifest_digest == result.digest
    assert read.manifest["annotations"]["org.example.note"] == "composed"
    assert read.config["config"]["Entrypoint"] == ["/app/hello"]
    assert read.config["created"] == "1970-01-01T00:00:07Z"
    assert read.layer_members(1)["srv/assets/greeting.txt"][0].uid == 65532
    assert sorted(read.layer_members(3)) == ["app", "app/hello"]

    again = image.write(Path("again.tar"))
    assert again.digest == result.digest and again.output == "oci-archive:again.tar"


def test_image_api_and_build_image_give_the_same_image(workdir: Path, assets: Path) -> None:
    one_call = zeroimage.build_image(
        "./hello", base="builtin:static", add="./assets:/srv/assets", output="a.tar", source_date_epoch=3
    )
    image = zeroimage.Image.from_base("builtin:static", source_date_epoch=3)
    image.add_files("./assets:/srv/assets")
    image.add_program("./hello")
    composed = image.write("b.tar", tag="hello:latest")
    assert composed.digest == one_call.digest
    assert (workdir / "a.tar").read_bytes() == (workdir / "b.tar").read_bytes()


def test_image_api_checks_its_input(workdir: Path, assets: Path) -> None:
    with pytest.raises(zeroimage.InvalidOptionError, match="did you mean platform"):
        zeroimage.Image.from_base("scratch", platfrom="linux/amd64")
    with pytest.raises(zeroimage.InvalidInputError, match="jobs"):
        zeroimage.Image.from_base("scratch", jobs=0)
    image = zeroimage.Image.from_base("scratch", platform="linux/arm64")
    with pytest.raises(zeroimage.InvalidInputError, match="built for amd64"):
        image.add_program("./hello")
    image = zeroimage.Image.from_base()
    with pytest.raises(zeroimage.InvalidInputError, match="allow_dynamic=True"):
        image.add_program("./hello-dynamic")
    image.add_program("./hello")
    with pytest.raises(zeroimage.InvalidInputError, match="one program per image"):
        image.add_program("./hello")
    with pytest.raises(zeroimage.InvalidInputError, match="where the program goes"):
        image.add_files("./config.txt:/hello")
    with pytest.raises(zeroimage.InvalidInputError, match="workdir"):
        image.set_workdir("relative")
    with pytest.raises(TypeError):
        image.set_entrypoint("/hello")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="puhs"):
        image.write("x.tar", **{"puhs": "x"})
    with pytest.raises(zeroimage.InvalidOptionError, match="push"):
        image.write("x.tar", push=5)
    assert not (workdir / "x.tar").exists()
    assert image.write().output == "oci-archive:hello.tar", "the default output is the CLI's"


def test_image_api_adds_files_from_a_registry_free_base_and_cancels(
    workdir: Path, programs: dict[str, Path]
) -> None:
    token = zeroimage.CancelToken()
    token.cancel()
    image = zeroimage.Image.from_base()
    with pytest.raises(zeroimage.CancelledError):
        image.add_program(programs["big"], cancel=token)
    assert image.layer_count == 0
    image.add_program("./hello")
    with pytest.raises(zeroimage.CancelledError):
        image.write("c.tar", cancel=token)
    assert not (workdir / "c.tar").exists()
