"""An OCI archive / layout reader written for the tests, independent of zeroimage: tarfile,
hashlib, gzip and json only. It checks every digest and size it meets."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    index: dict[str, Any]
    manifest_bytes: bytes
    manifest: dict[str, Any]
    config: dict[str, Any]
    layers: list[bytes]  # uncompressed layer tars
    docker_manifest: list[dict[str, Any]] | None
    files: dict[str, bytes] = field(default_factory=dict)  # every blob by digest

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest_bytes)

    def layer_members(self, n: int = -1) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
        out = {}
        with tarfile.open(fileobj=io.BytesIO(self.layers[n]), mode="r:") as tar:
            for member in tar:
                f = tar.extractfile(member) if member.isfile() else None
                out[member.name] = (member, f.read() if f else None)
        return out


def _read_all(get) -> Image:  # noqa: ANN001 - get(name) -> bytes
    def blob(desc: dict[str, Any]) -> bytes:
        algo, hexdigest = desc["digest"].split(":", 1)
        assert algo == "sha256", desc
        data = get(f"blobs/sha256/{hexdigest}")
        assert len(data) == desc["size"], f"size of {desc['digest']}: {len(data)} != {desc['size']}"
        assert sha256(data) == desc["digest"], f"digest of blob {desc['digest']} does not match"
        return data

    layout = json.loads(get("oci-layout"))
    assert layout == {"imageLayoutVersion": "1.0.0"}, layout
    index = json.loads(get("index.json"))
    assert index["schemaVersion"] == 2
    assert len(index["manifests"]) >= 1
    mdesc = index["manifests"][-1]
    manifest_bytes = blob(mdesc)
    manifest = json.loads(manifest_bytes)
    assert manifest["mediaType"] == mdesc["mediaType"]
    config_bytes = blob(manifest["config"])
    config = json.loads(config_bytes)
    files = {mdesc["digest"]: manifest_bytes, manifest["config"]["digest"]: config_bytes}
    layers = []
    diff_ids = config["rootfs"]["diff_ids"]
    assert config["rootfs"]["type"] == "layers"
    assert len(diff_ids) == len(manifest["layers"])
    for desc, diff_id in zip(manifest["layers"], diff_ids, strict=True):
        compressed = blob(desc)
        files[desc["digest"]] = compressed
        raw = gzip.decompress(compressed) if desc["mediaType"].endswith("gzip") else compressed
        assert sha256(raw) == diff_id, f"diff_id of {desc['digest']}: {sha256(raw)} != {diff_id}"
        layers.append(raw)
    try:
        docker_manifest = json.loads(get("manifest.json"))
    except KeyError:
        docker_manifest = None
    return Image(index, manifest_bytes, manifest, config, layers, docker_manifest, files)


def read_archive(path: Path) -> Image:
    with tarfile.open(path, mode="r:") as tar:
        names = tar.getnames()
        assert len(names) == len(set(names)), f"duplicate entries in {path}"

        def get(name: str) -> bytes:
            member = tar.getmember(name)
            f = tar.extractfile(member)
            assert f is not None, name
            return f.read()

        return _read_all(get)


def read_layout(path: Path) -> Image:
    def get(name: str) -> bytes:
        try:
            return (path / name).read_bytes()
        except FileNotFoundError as e:
            raise KeyError(name) from e

    return _read_all(get)
