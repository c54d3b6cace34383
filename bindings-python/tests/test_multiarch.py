"""Several programs make one multi-platform image index (`build_image([...])` or a mapping of
platform to path). The archive is read with tarfile + hashlib + json; the runtimes' checks of
the same images are in tests/tests/multiarch.rs."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

import zeroimage


@pytest.fixture
def dist(workdir: Path) -> list[Path]:
    """amd64/server and arm64/server: the same file name for two platforms."""
    out = []
    for arch, name in (("amd64", "hello"), ("arm64", "hello-arm64")):
        (workdir / arch).mkdir()
        shutil.copy2(workdir / name, workdir / arch / "server")
        out.append(Path(arch) / "server")
    return out


def read_index(archive: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    with tarfile.open(archive) as tar:

        def read(name: str) -> bytes:
            member = tar.extractfile(name)
            assert member is not None, name
            return member.read()

        index_json = json.loads(read("index.json"))
        digest = index_json["manifests"][0]["digest"]
        blob = read("blobs/sha256/" + digest.split(":")[1])
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == digest
    return index_json, json.loads(blob)


def test_several_programs_make_one_index(dist: list[Path], workdir: Path) -> None:
    result = zeroimage.build_image(dist, output="multi.tar", tag="team/server:1.0")
    index_json, index = read_index(workdir / "multi.tar")
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = [m["platform"]["architecture"] for m in index["manifests"]]
    assert platforms == ["amd64", "arm64"]
    assert result.index_digest == result.digest == index_json["manifests"][0]["digest"]
    assert result.manifests == {
        "linux/amd64": index["manifests"][0]["digest"],
        "linux/arm64": index["manifests"][1]["digest"],
    }
    assert result.digests == {"oci-archive:multi.tar": result.digest}

    by_platform = zeroimage.build_image(
        {"linux/amd64": str(dist[0]), "linux/arm64": str(dist[1])}, output="again.tar", tag="team/server:1.0"
    )
    assert by_platform.digest == result.digest, "a mapping of platform to path gives the same index"


def test_bad_sets_of_programs_are_refused(dist: list[Path], workdir: Path) -> None:
    with pytest.raises(zeroimage.InvalidInputError, match="both for linux/amd64"):
        zeroimage.build_image([dist[0], "hello"], output="bad.tar", path="/server")
    with pytest.raises(zeroimage.InvalidInputError, match="path"):
        zeroimage.build_image([dist[0], "hello-arm64"], output="bad.tar")
    assert not (workdir / "bad.tar").exists()
