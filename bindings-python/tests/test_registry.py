"""Push, login and logout against a real registry (docker-registry from the test bed), each
result checked with skopeo, which we did not write; `write_base` checked with tarfile."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import oci
import zeroimage
from conftest import Binaries, require_tool, run, start_registry

USER, PASSWORD = "pyuser", "pw-Kd93-never-printed"


@pytest.fixture(scope="module")
def plain(binaries: Binaries) -> Iterator[dict[str, Any]]:
    """An anonymous registry over plain HTTP on 127.0.0.1 (loopback: no --insecure needed)."""
    with start_registry(binaries) as info:
        yield info


@pytest.fixture(scope="module")
def secured(binaries: Binaries) -> Iterator[dict[str, Any]]:
    """A registry with htpasswd Basic auth over TLS with a self-signed CA (`ca_cert`)."""
    with start_registry(binaries, "--auth", f"{USER}:{PASSWORD}", "--tls") as info:
        yield info


def skopeo_raw(registry: dict[str, Any], ref: str) -> bytes:
    """The manifest bytes as the registry stores them (`skopeo inspect --raw`)."""
    require_tool("skopeo")
    cmd = ["skopeo", "--insecure-policy", "inspect", "--raw", *registry["flags"], f"docker://{ref}"]
    return subprocess.run(cmd, capture_output=True, check=True).stdout


def skopeo_config(registry: dict[str, Any], ref: str) -> dict[str, Any]:
    require_tool("skopeo")
    cmd = ["skopeo", "--insecure-policy", "inspect", "--config", *registry["flags"], f"docker://{ref}"]
    return json.loads(run(cmd).stdout)  # type: ignore[no-any-return]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_push_with_output_to_several_tags(workdir: Path, plain: dict[str, Any], docker_config: Path) -> None:
    addr = plain["addr"]
    lines: list[str] = []
    result = zeroimage.build_image(
        "./hello",
        base="builtin:static",
        output="out.tar",
        push=[f"{addr}/py/hello:1.0", f"docker://{addr}/py/hello:latest"],
        env={"GREETING": "hi"},
        log=lines.append,
    )
    assert result.pushed == [f"{addr}/py/hello@{result.digest}"] * 2
    assert result.outputs == [
        "oci-archive:out.tar",
        f"docker://{addr}/py/hello:1.0",
        f"docker://{addr}/py/hello:latest",
    ]
    assert result.output == "oci-archive:out.tar"

    # The registry holds exactly the manifest the archive holds, under both tags and by digest.
    archive = oci.read_archive(workdir / "out.tar")
    assert archive.manifest_digest == result.digest
    for ref in (f"{addr}/py/hello:1.0", f"{addr}/py/hello:latest", f"{addr}/py/hello@{result.digest}"):
        raw = skopeo_raw(plain, ref)
        assert sha256(raw) == result.digest, ref
        assert raw == archive.manifest_bytes
    config = skopeo_config(plain, f"{addr}/py/hello:1.0")
    assert config["config"]["Entrypoint"] == ["/hello"]
    assert "GREETING=hi" in config["config"]["Env"]
    # The log is the CLI's --verbose: each blob (config, layers) went up once, for both tags.
    assert sum("uploaded" in line for line in lines) == 1 + len(archive.manifest["layers"]), lines


def test_push_alone_writes_no_archive(workdir: Path, plain: dict[str, Any], docker_config: Path) -> None:
    ref = f"{plain['addr']}/py/only:1"
    before = sorted(p.name for p in workdir.iterdir())
    result = zeroimage.build_image("./hello", push=ref, source_date_epoch=1700000000)
    assert sorted(p.name for p in workdir.iterdir()) == before, "push alone wrote a file"
    assert result.outputs == [f"docker://{ref}"] and result.output == f"docker://{ref}"
    assert result.pushed == [f"{plain['addr']}/py/only@{result.digest}"]
    assert sha256(skopeo_raw(plain, ref)) == result.digest
    assert skopeo_config(plain, ref)["created"] == "2023-11-14T22:13:20Z"


def test_push_with_creds_and_ca_cert(workdir: Path, secured: dict[str, Any], docker_config: Path) -> None:
    ref = f"{secured['addr']}/py/secure:1"
    # Without credentials (none stored: a private DOCKER_CONFIG) the registry refuses.
    with pytest.raises(zeroimage.AuthError, match="refused access"):
        zeroimage.build_image("./hello", push=ref, ca_cert=secured["ca_cert"])
    # Without the CA, TLS verification fails.
    with pytest.raises(zeroimage.NetworkError):
        zeroimage.build_image("./hello", push=ref, creds=f"{USER}:{PASSWORD}", timeout=10)
    lines: list[str] = []
    result = zeroimage.build_image(
        "./hello",
        push=ref,
        creds=f"{USER}:{PASSWORD}",
        ca_cert=[Path(secured["ca_cert"])],
        timeout=30,
        log=lines.append,
    )
    assert sha256(skopeo_raw(secured, ref)) == result.digest
    assert f"credentials: user {USER} from creds" in lines
    assert not any(PASSWORD in line for line in lines)
    # --insecure skips verification instead.
    again = zeroimage.build_image("./hello", push=ref, creds=f"{USER}:{PASSWORD}", insecure=True)
    assert again.digest == result.digest


def test_login_logout_round_trip(workdir: Path, secured: dict[str, Any], docker_config: Path) -> None:
    addr, ca = secured["addr"], secured["ca_cert"]
    config = docker_config / "config.json"

    # A wrong password is refused and nothing is written.
    with pytest.raises(zeroimage.AuthError, match="refused access") as info:
        zeroimage.login(addr, USER, "wrong-password", ca_cert=ca)
    assert "nothing was stored" in str(info.value)
    assert "wrong-password" not in str(info.value)
    assert not config.exists()

    source = zeroimage.login(addr, USER, PASSWORD, ca_cert=ca)
    assert source == f"{config} (auths)"
    stored = json.loads(config.read_text())
    assert stored["auths"][addr]["auth"] == base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert config.stat().st_mode & 0o777 == 0o600

    # A push now finds the stored credentials.
    lines: list[str] = []
    ref = f"{addr}/py/stored:1"
    result = zeroimage.build_image("./hello", push=ref, ca_cert=ca, log=lines.append)
    assert sha256(skopeo_raw(secured, ref)) == result.digest
    assert any(f"user {USER} from {config} (auths)" in line for line in lines), lines

    assert zeroimage.logout(addr) is True
    assert addr not in json.loads(config.read_text()).get("auths", {})
    assert zeroimage.logout(addr) is False
    with pytest.raises(zeroimage.AuthError):
        zeroimage.build_image("./hello", push=f"{addr}/py/stored:2", ca_cert=ca)


def test_login_bad_input(docker_config: Path) -> None:
    with pytest.raises(zeroimage.InvalidInputError, match="registry"):
        zeroimage.login("not a host", USER, PASSWORD)
    with pytest.raises(zeroimage.InvalidInputError, match="password"):
        zeroimage.login("127.0.0.1:1", USER, "")
    with pytest.raises(zeroimage.NetworkError):
        zeroimage.login("127.0.0.1:1", USER, PASSWORD)
    with pytest.raises(TypeError):
        zeroimage.login("127.0.0.1:1", USER, PASSWORD, ca_cert=5)  # type: ignore[arg-type]
    assert not (docker_config / "config.json").exists()


class _Registry(http.server.BaseHTTPRequestHandler):
    """Just enough of a registry for `login`: /v2/ wants Basic auth."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") == expected:
            self.send_response(200)
        else:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_login_releases_the_gil(docker_config: Path) -> None:
    """The registry here is Python code on another thread of this process: `login` can only
    get its answers if it does not hold the GIL while it waits for them."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        addr = f"127.0.0.1:{server.server_address[1]}"
        assert zeroimage.login(addr, USER, PASSWORD).endswith("(auths)")
        assert zeroimage.logout(addr) is True
    finally:
        server.shutdown()
        server.server_close()


def test_write_base(workdir: Path, rust_cli: Path) -> None:
    result = zeroimage.write_base()
    assert result.output == "oci-archive:static.tar" and result.pushed == []
    assert result.tags == [f"docker.io/library/zeroimage-builtin-static:{zeroimage.__version__}"]

    image = oci.read_archive(workdir / "static.tar")
    assert image.manifest_digest == result.digest
    assert image.manifest["config"]["digest"] == result.config_digest
    assert image.index["manifests"][0]["annotations"]["io.containerd.image.name"] == result.tags[0]
    members = image.layer_members()
    assert "etc/passwd" in members and "etc/ssl/certs/ca-certificates.crt" in members
    passwd = members["etc/passwd"][1]
    assert passwd is not None and b"nonroot:x:65532:65532" in passwd
    with tarfile.open(workdir / "static.tar") as tar:
        assert "index.json" in tar.getnames() and "manifest.json" in tar.getnames()

    # Options, and the CLI's `zeroimage base` gives the same bytes.
    arm = zeroimage.write_base(
        "builtin:static",
        output=workdir / "arm.tar",
        tag=["base:arm", "base:latest"],
        platform="linux/arm64",
        annotations={"org.example": "x"},
    )
    assert arm.platform == "linux/arm64" and arm.tags == [
        "docker.io/library/base:arm",
        "docker.io/library/base:latest",
    ]
    image = oci.read_archive(workdir / "arm.tar")
    assert image.manifest_digest == arm.digest
    assert image.manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert image.manifest["annotations"] == {"org.example": "x"}
    assert image.config["architecture"] == "arm64"
    cli = run(
        [
            str(rust_cli),
            "base",
            "builtin:static",
            "-o",
            "cli.tar",
            "--platform",
            "linux/arm64",
        ]
        + ["--tag", "base:arm", "--tag", "base:latest", "--annotation", "org.example=x", "--quiet"],
        cwd=workdir,
    )
    assert cli.stdout.strip() == arm.digest
    assert (workdir / "cli.tar").read_bytes() == (workdir / "arm.tar").read_bytes()


@pytest.mark.parametrize(
    ("kwargs", "cls"),
    [
        ({"base": "scratch"}, zeroimage.InvalidInputError),  # no default output for scratch
        ({"base": "builtin:nope"}, zeroimage.InvalidInputError),
        ({"platform": "linux"}, zeroimage.InvalidInputError),
        ({"format": "tgz"}, zeroimage.InvalidInputError),
        ({"tag": "Bad Name"}, zeroimage.InvalidInputError),
        ({"output": "dir:x"}, zeroimage.UnsupportedError),
    ],
    ids=repr,
)
def test_write_base_errors(
    workdir: Path, kwargs: dict[str, Any], cls: type[zeroimage.ZeroImageError]
) -> None:
    before = sorted(p.name for p in workdir.iterdir())
    with pytest.raises(zeroimage.ZeroImageError) as info:
        zeroimage.write_base(**kwargs)
    assert type(info.value) is cls, info.value
    assert sorted(p.name for p in workdir.iterdir()) == before
