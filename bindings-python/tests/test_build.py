"""Images built from Python, checked with an independent reader (tarfile + hashlib + json)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

import oci
import zeroimage


def test_archive_is_correct_and_matches_the_result(workdir: Path) -> None:
    program = (workdir / "hello").read_bytes()
    result = zeroimage.build_image(
        "./hello",
        output="out.tar",
        tag=["registry.example.com/team/hello:1.0", "hello:dev"],
        env={"GREETING": "hi", "B": "x=y"},
        args=["--port", "8080"],
        user="65532:65532",
        workdir="/srv",
        labels={"org.example.team": "build"},
        annotations={"org.opencontainers.image.version": "1.0"},
        source_date_epoch=1700000000,
    )
    assert isinstance(result, zeroimage.BuildResult)
    assert result.output == "oci-archive:out.tar"
    assert result.outputs == ["oci-archive:out.tar"]
    assert result.platform == "linux/amd64"
    assert result.tags == ["registry.example.com/team/hello:1.0", "docker.io/library/hello:dev"]

    image = oci.read_archive(workdir / "out.tar")
    assert image.manifest_digest == result.digest
    assert image.index["manifests"][0]["digest"] == result.digest
    assert image.manifest["config"]["digest"] == result.config_digest
    assert result.size == len(image.manifest_bytes) + sum(
        d["size"] for d in [image.manifest["config"], *image.manifest["layers"]]
    )
    assert image.manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert image.manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert image.manifest["annotations"] == {"org.opencontainers.image.version": "1.0"}

    config = image.config
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["created"] == "2023-11-14T22:13:20Z"
    c = config["config"]
    assert c["Entrypoint"] == ["/hello"]
    assert c["Cmd"] == ["--port", "8080"]
    assert "GREETING=hi" in c["Env"] and "B=x=y" in c["Env"]
    assert c["User"] == "65532:65532"
    assert c["WorkingDir"] == "/srv"
    assert c["Labels"] == {"org.example.team": "build"}

    # The layer: exactly the program, executable, owned by root, with the epoch as mtime.
    members = image.layer_members()
    assert list(members) == ["hello"]
    info, data = members["hello"]
    assert data == program
    assert info.mode & 0o777 == 0o755 and info.uid == 0 and info.gid == 0
    assert info.mtime == 1700000000

    # docker load's manifest.json names the same blobs and the tags.
    assert image.docker_manifest is not None
    [entry] = image.docker_manifest
    assert entry["Config"] == "blobs/sha256/" + result.config_digest.split(":")[1]
    assert entry["Layers"] == ["blobs/sha256/" + image.manifest["layers"][0]["digest"].split(":")[1]]
    assert entry["RepoTags"] == ["registry.example.com/team/hello:1.0", "hello:dev"]


def test_default_output_is_the_clis(workdir: Path) -> None:
    result = zeroimage.build_image("./hello")
    assert result.output == "oci-archive:hello.tar"
    assert result.tags == ["docker.io/library/hello:latest"]
    assert oci.read_archive(workdir / "hello.tar").manifest_digest == result.digest


def test_pathlike_entrypoint_and_output(workdir: Path) -> None:
    (workdir / "sub").mkdir()
    result = zeroimage.build_image(
        workdir / "hello", output=workdir / "sub" / "image.tar", path="/app/bin/hello"
    )
    assert result.output == f"oci-archive:{workdir / 'sub' / 'image.tar'}"
    image = oci.read_archive(workdir / "sub" / "image.tar")
    members = image.layer_members()
    assert list(members) == ["app", "app/bin", "app/bin/hello"]  # tarfile drops the trailing /
    assert (
        members["app"][0].isdir() and members["app/bin"][0].isdir() and members["app/bin/hello"][0].isfile()
    )
    assert image.config["config"]["Entrypoint"] == ["/app/bin/hello"]


def test_layout_output_is_oci_and_docker_format_needs_a_push(workdir: Path) -> None:
    with pytest.raises(zeroimage.InvalidInputError, match="always hold OCI manifests"):
        zeroimage.build_image("./hello", output="oci:layout:v1", format="docker")
    assert not (workdir / "layout").exists()
    result = zeroimage.build_image("./hello", output="oci:layout:v1", compression_level=0)
    assert result.output == "oci:layout:v1"
    assert result.digests == {result.output: result.digest}
    image = oci.read_layout(workdir / "layout")
    assert image.manifest_digest == result.digest
    assert image.manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert image.index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    # Level 0 still writes a gzip stream (stored blocks): about the size of the tar.
    layer = image.files[image.manifest["layers"][0]["digest"]]
    assert len(gzip.decompress(layer)) <= len(layer)


def test_lambda_profile_lists_every_violation_and_writes_nothing(workdir: Path) -> None:
    with pytest.raises(zeroimage.InvalidInputError) as info:
        zeroimage.build_image("./hello", output="lambda.tar", profile="lambda", compression="zstd")
    assert "does not meet the lambda profile" in str(info.value)
    assert "zstd-compressed" in str(info.value)
    assert not (workdir / "lambda.tar").exists()
    result = zeroimage.build_image("./hello", output="lambda.tar", profile="lambda")
    assert oci.read_archive(workdir / "lambda.tar").manifest_digest == result.digest


def test_builds_are_reproducible_and_equal_to_the_rust_cli(workdir: Path, rust_cli: Path) -> None:
    a = zeroimage.build_image("./hello", output="a.tar", tag="hello:1", env={"K": "V"})
    b = zeroimage.build_image("./hello", output="b.tar", tag="hello:1", env={"K": "V"})
    assert a.digest == b.digest
    # Only the output name differs: the archives are byte-identical.
    assert (workdir / "a.tar").read_bytes() == (workdir / "b.tar").read_bytes()
    proc = subprocess.run(
        [str(rust_cli), "build", "./hello", "-o", "c.tar", "--tag", "hello:1", "--env", "K=V", "--quiet"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == a.digest
    assert (workdir / "c.tar").read_bytes() == (workdir / "a.tar").read_bytes()


def test_source_date_epoch_from_the_environment(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    zeroimage.build_image("./hello", output="e.tar")
    assert oci.read_archive(workdir / "e.tar").config["created"] == "1970-01-02T00:00:00Z"


def test_allow_dynamic_builds_a_dynamic_program(workdir: Path) -> None:
    result = zeroimage.build_image("./hello-dynamic", output="d.tar", allow_dynamic=True)
    image = oci.read_archive(workdir / "d.tar")
    assert image.manifest_digest == result.digest
    assert list(image.layer_members()) == ["hello-dynamic"]


def test_result_and_progress_types_are_read_only(workdir: Path) -> None:
    events: list[zeroimage.Progress] = []
    result = zeroimage.build_image("./hello", output="r.tar", progress=events.append)
    with pytest.raises(AttributeError):
        result.digest = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        events[0].current = 1  # type: ignore[misc]
    assert "BuildResult(digest=" in repr(result) and result.digest in repr(result)
    assert repr(events[0]).startswith("Progress(stage=")
    with pytest.raises(TypeError):
        zeroimage.BuildResult()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("program", "platform"),
    [("arm64", "linux/arm64"), ("riscv64_header", "linux/riscv64"), ("aarch64_header", "linux/arm64")],
)
def test_platform_comes_from_the_program(
    workdir: Path, programs: dict[str, Path], program: str, platform: str
) -> None:
    result = zeroimage.build_image(programs[program], output="p.tar")
    assert result.platform == platform
    config = oci.read_archive(workdir / "p.tar").config
    assert f"{config['os']}/{config['architecture']}" == platform


def test_compression_options(workdir: Path) -> None:
    """`jobs` never changes the bytes; `compression="zstd"` gives a zstd layer."""
    one = zeroimage.build_image("./hello", output="one.tar", jobs=1)
    four = zeroimage.build_image("./hello", output="four.tar", jobs=4)
    assert one.digest == four.digest
    assert (workdir / "one.tar").read_bytes() == (workdir / "four.tar").read_bytes()
    zstd = zeroimage.build_image("./hello", output="zstd.tar", compression="zstd", compression_level=19)
    with tarfile.open(workdir / "zstd.tar") as tar:
        algorithm, digest = zstd.digest.split(":")
        member = tar.extractfile(f"blobs/{algorithm}/{digest}")
        assert member is not None
        manifest = json.loads(member.read())
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
