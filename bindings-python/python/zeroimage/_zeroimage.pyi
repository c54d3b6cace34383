# Hand-written stub of the native module (bindings-python/src/lib.rs); a test checks it with
# `python -m mypy.stubtest zeroimage._zeroimage`.
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, TypedDict, final, type_check_only

from typing_extensions import Unpack

__all__ = [
    "build_image",
    "write_base",
    "login",
    "logout",
    "run_cli",
    "BuildResult",
    "CancelToken",
    "Image",
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
    def tags(self) -> list[str]:
        """The names given to the image (``docker.io/library/hello:latest``)."""
    @property
    def pushed(self) -> list[str]:
        """Each ``push`` target as ``REPOSITORY@DIGEST`` (``localhost:5000/hello@sha256:…``)."""
    @property
    def index_digest(self) -> str | None:
        """The index digest when several programs made an image index, else ``None``."""
    @property
    def manifests(self) -> dict[str, str]:
        """Each platform's manifest digest (``{"linux/amd64": "sha256:…"}``)."""
    @property
    def digests(self) -> dict[str, str]:
        """The digest each output holds (``{"oci-archive:hello.tar": "sha256:…"}``)."""
    @property
    def bundled(self) -> list[str]:
        """The paths in the image of the shared libraries bundled (``bundle_libs=True``)."""

@final
class Progress:
    """A progress event: ``current`` of ``total`` bytes done in ``stage``."""

    @property
    def stage(self) -> str:
        """``"layer"`` (reading and compressing files into a layer), ``"write"`` (writing an output)."""
    @property
    def current(self) -> int:
        """Bytes done so far in this stage."""
    @property
    def total(self) -> int | None:
        """Bytes to do in this stage, when known."""

@type_check_only
class AddItem(TypedDict, total=False):
    """One ``add`` item in its structured form: ``src`` and ``dest`` are required."""

    src: str | os.PathLike[str]
    dest: str
    owner: str
    follow_symlinks: bool

_Path = str | os.PathLike[str]
_Add = str | AddItem | Sequence[str | AddItem]
_Paths = _Path | Sequence[_Path]
_KeyValues = Mapping[str, str] | Sequence[str]

@final
class CancelToken:
    """Stops the calls it is passed to (``cancel=token``), from any thread."""

    def __init__(self) -> None: ...
    def cancel(self) -> None:
        """Ask every call holding this token to stop as soon as it can."""
    @property
    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""

_Cancel = CancelToken | threading.Event | None

@type_check_only
class RegistryOptions(TypedDict, total=False):
    """How registries are reached (``login``, registry bases, ``push``)."""

    insecure: bool
    ca_cert: _Paths | None
    timeout: float | None

@type_check_only
class ImageOptions(RegistryOptions, total=False):
    """The build options ``Image.from_base`` takes: the base's platform, its layers' encoding."""

    creds: str | None
    platform: str | None
    os: str | None
    arch: str | None
    variant: str | None
    format: Literal["oci", "docker"] | None
    compression: Literal["gzip", "zstd", "none"]
    compression_level: int | None
    jobs: int | None
    source_date_epoch: int | None

@type_check_only
class BuildOptions(ImageOptions, total=False):
    """Every option of ``build_image``: the CLI's ``build`` options, one schema in the core."""

    base: str
    from_archive: _Path | None
    path: str | None
    output: _Path | None
    push: str | Sequence[str] | None
    tag: str | Sequence[str] | None
    add: _Add | None
    add_owner: str | None
    add_follow_symlinks: bool
    env: _KeyValues | None
    args: Sequence[str] | None
    user: str | None
    workdir: str | None
    labels: _KeyValues | None
    annotations: _KeyValues | None
    allow_dynamic: bool
    bundle_libs: bool
    sysroot: _Path | None
    bundle_lib: str | Sequence[str] | None
    platform_tags: bool
    profile: Literal["lambda"] | None
    docker_platform: str | None

def build_image(
    entrypoint: _Path | Sequence[_Path] | Mapping[str, _Path],
    *,
    log: Callable[[str], object] | None = None,
    progress: Callable[[Progress], object] | None = None,
    cancel: _Cancel = None,
    **options: Unpack[BuildOptions],
) -> BuildResult:
    """Build an image of the program ``entrypoint``; write it to ``output`` and push it to ``push``.

    The options are the CLI's ``build`` options (one schema in the core): ``base`` is
    ``--from``; ``add`` takes ``"SRC:DEST"`` strings (files beside the program, in one layer
    below the program's), ``{"src", "dest", "owner", "follow_symlinks"}`` items, or a list;
    ``env``, ``labels`` and ``annotations`` take a mapping or ``"KEY=VALUE"`` strings;
    ``jobs`` is 1-256 (default: every core); ``source_date_epoch`` is 0 to 253402300799
    (default ``$SOURCE_DATE_EPOCH``, else 0); ``timeout`` is seconds, at most 86400.
    An unknown keyword or a wrong shape raises ``InvalidOptionError`` (a ``TypeError``).
    """

def write_base(
    base: str = "builtin:static",
    *,
    output: str | os.PathLike[str] | None = None,
    tag: str | Sequence[str] | None = None,
    platform: str | None = None,
    format: Literal["oci", "docker"] | None = None,
    annotations: Mapping[str, str] | None = None,
    progress: Callable[[Progress], object] | None = None,
    cancel: _Cancel = None,
) -> BuildResult:
    """Write a base image on its own, as ``zeroimage base`` does."""

def login(
    registry: str,
    username: str,
    password: str,
    *,
    log: Callable[[str], object] | None = None,
    **options: Unpack[RegistryOptions],
) -> str:
    """Check the credentials against ``registry``, store them as ``docker login`` does; return where."""

def logout(registry: str) -> bool:
    """Erase the stored credentials for ``registry``; return whether there were any."""

@final
class Image:
    """An image being composed: a base, layers on top, config edits; then ``write()``."""

    @staticmethod
    def from_base(
        base: str = "scratch",
        *,
        log: Callable[[str], object] | None = None,
        **options: Unpack[ImageOptions],
    ) -> Image:
        """Resolve ``base`` for ``platform`` (default ``linux/<this machine>``); no layer bytes yet."""
    @property
    def platform(self) -> str:
        """The platform the image is for (``linux/amd64``)."""
    @property
    def format(self) -> Literal["oci", "docker"]:
        """The media types the image is written with."""
    @property
    def layer_count(self) -> int:
        """How many layers the image has so far, the base's included."""
    def add_files(
        self,
        add: _Add,
        *,
        owner: str | None = None,
        follow_symlinks: bool = False,
        progress: Callable[[Progress], object] | None = None,
        cancel: _Cancel = None,
    ) -> None:
        """Add host files and directories (``"SRC:DEST"`` items, as ``--add``) in one new layer."""
    def add_program(
        self,
        path: str | os.PathLike[str],
        path_in_image: str | None = None,
        *,
        allow_dynamic: bool = False,
        progress: Callable[[Progress], object] | None = None,
        cancel: _Cancel = None,
    ) -> None:
        """Add the program in a layer of its own (default ``/<file name>``) as the entrypoint."""
    def set_entrypoint(self, entrypoint: Sequence[str]) -> None:
        """Set the Entrypoint; the base's Cmd is cleared."""
    def set_cmd(self, cmd: Sequence[str]) -> None:
        """Set Cmd, the arguments after the entrypoint (empty: remove it)."""
    def set_env(self, key: str, value: str) -> None:
        """Set an environment variable (merged over the base's by name)."""
    def set_user(self, user: str) -> None:
        """Set the user: a name, ``uid`` or ``uid:gid``."""
    def set_workdir(self, workdir: str) -> None:
        """Set the working directory (absolute)."""
    def set_label(self, key: str, value: str) -> None:
        """Set a config label."""
    def set_annotation(self, key: str, value: str) -> None:
        """Set a manifest annotation."""
    def write(
        self,
        output: str | os.PathLike[str] | None = None,
        *,
        push: str | Sequence[str] | None = None,
        tag: str | Sequence[str] | None = None,
        log: Callable[[str], object] | None = None,
        progress: Callable[[Progress], object] | None = None,
        cancel: _Cancel = None,
    ) -> BuildResult:
        """Write the image to ``output`` and push it to ``push``; it can be written again."""

def run_cli(args: Sequence[str]) -> int:
    """Run the zeroimage CLI with ``args`` (without the program name); return its exit code."""
