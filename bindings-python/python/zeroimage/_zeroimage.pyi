# Hand-written stub of the native module (bindings-python/src/lib.rs); a test checks it with
# `python -m mypy.stubtest zeroimage._zeroimage`.
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, final

__all__ = [
    "build_image",
    "write_base",
    "login",
    "logout",
    "run_cli",
    "BuildResult",
    "Progress",
    "__version__",
]

__version__: str

@final
class BuildResult:
    """What a build produced."""

    @property
    def digest(self) -> str:
        """The manifest digest (``sha256:…``): the image's identity."""
    @property
    def config_digest(self) -> str:
        """The config digest: Docker's image ID."""
    @property
    def size(self) -> int:
        """Bytes of the image as stored: manifest, config and every layer."""
    @property
    def platform(self) -> str:
        """The image's platform (``linux/amd64``)."""
    @property
    def output(self) -> str:
        """The first output, as a transport string (``oci-archive:hello.tar``)."""
    @property
    def outputs(self) -> list[str]:
        """Every output written, as transport strings."""
    @property
    def digests(self) -> list[str]:
        """The manifest digest each output holds, in the order of ``outputs``.

        Archives and ``oci:`` layouts hold OCI manifests; a push keeps the base's format (or
        ``format``) and gzips uncompressed base layers, so its digest can differ."""
    @property
    def tags(self) -> list[str]:
        """The names given to the image (``docker.io/library/hello:latest``)."""
    @property
    def pushed(self) -> list[str]:
        """Each ``push`` target as ``REPOSITORY@DIGEST`` (``localhost:5000/hello@sha256:…``)."""

@final
class Progress:
    """A progress event: ``current`` of ``total`` bytes done in ``stage``."""

    @property
    def stage(self) -> str:
        """``"layer"`` (reading and compressing the program), ``"write"`` (writing an output), …"""
    @property
    def current(self) -> int:
        """Bytes done so far in this stage."""
    @property
    def total(self) -> int | None:
        """Bytes to do in this stage, when known."""

def build_image(
    entrypoint: str | os.PathLike[str],
    *,
    base: str = "scratch",
    platform: str | None = None,
    output: str | os.PathLike[str] | None = None,
    push: str | Sequence[str] | None = None,
    tag: str | Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] | None = None,
    user: str | None = None,
    workdir: str | None = None,
    path: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    allow_dynamic: bool = False,
    format: Literal["oci", "docker"] | None = None,
    profile: Literal["lambda"] | None = None,
    compression: Literal["gzip", "zstd", "none"] = "gzip",
    compression_level: int | None = None,
    jobs: int | None = None,
    source_date_epoch: int | None = None,
    insecure: bool = False,
    ca_cert: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    creds: str | None = None,
    timeout: float | None = None,
    log: Callable[[str], object] | None = None,
    progress: Callable[[Progress], object] | None = None,
) -> BuildResult:
    """Build an image of the program ``entrypoint``; write it to ``output`` and push it to ``push``."""

def write_base(
    base: str = "builtin:static",
    *,
    output: str | os.PathLike[str] | None = None,
    tag: str | Sequence[str] | None = None,
    platform: str | None = None,
    format: Literal["oci", "docker"] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> BuildResult:
    """Write a base image on its own, as ``zeroimage base`` does."""

def login(
    registry: str,
    username: str,
    password: str,
    *,
    insecure: bool = False,
    ca_cert: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    log: Callable[[str], object] | None = None,
) -> str:
    """Check the credentials against ``registry``, store them as ``docker login`` does; return where."""

def logout(registry: str) -> bool:
    """Erase the stored credentials for ``registry``; return whether there were any."""

def run_cli(args: Sequence[str]) -> int:
    """Run the zeroimage CLI with ``args`` (without the program name); return its exit code."""
