"""zeroimage: build container images for single-binary programs, in-process, without Docker.

    >>> import zeroimage
    >>> result = zeroimage.build_image("./hello", output="hello.tar", tag="hello:1.0")
    >>> result.digest
    'sha256:…'

`build_image` can also push (``push="registry.example.com/hello:1.0"``) and add files beside
the program (``add="./static:/srv/static"``); `login` and `logout` store and erase registry
credentials as ``docker login`` does; `write_base` writes a base image (``builtin:static``) on
its own. `Image` composes the same steps as objects (a base, files, the program, config edits,
outputs). Each releases the GIL, so calls in threads run in parallel; `cancel=` takes a
`CancelToken` or a `threading.Event`, and `zeroimage.aio` has awaitable versions that a
cancelled asyncio task stops. Errors are `ZeroImageError` subclasses, one per error kind,
carrying the CLI's message. `main()` is the ``zeroimage`` command line (also
``python -m zeroimage``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from zeroimage import _zeroimage
from zeroimage._errors import (
    AuthError,
    CancelledError,
    IntegrityError,
    InvalidInputError,
    InvalidOptionError,
    IoError,
    NetworkError,
    NotFoundError,
    ProgramNotFoundError,
    RegistryError,
    UnsupportedError,
    ZeroImageError,
)
from zeroimage._zeroimage import (
    BuildResult,
    CancelToken,
    Image,
    Progress,
    build_image,
    login,
    logout,
    write_base,
)

__version__: str = _zeroimage.__version__

__all__ = [
    "AuthError",
    "BuildResult",
    "CancelToken",
    "CancelledError",
    "Image",
    "IntegrityError",
    "InvalidInputError",
    "InvalidOptionError",
    "IoError",
    "NetworkError",
    "NotFoundError",
    "Progress",
    "ProgramNotFoundError",
    "RegistryError",
    "UnsupportedError",
    "ZeroImageError",
    "__version__",
    "build_image",
    "login",
    "logout",
    "main",
    "write_base",
]


def main(args: Sequence[str | os.PathLike[str]] | None = None) -> int:
    """Run the ``zeroimage`` command line and return its exit code.

    ``args`` are the arguments after the program name (default: ``sys.argv[1:]``), e.g.
    ``main(["build", "./hello", "-o", "hello.tar"])``. This is the same parser and the same
    output as the Rust binary: 0 on success, 1 when the build fails (the error is printed on
    stderr), 2 for a usage error, 130 after Ctrl-C (the build is cancelled, nothing is written).
    """
    argv = [os.fspath(a) for a in (sys.argv[1:] if args is None else args)]
    # The CLI writes to file descriptors 1 and 2 directly: keep the order of earlier output.
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    try:
        return _zeroimage.run_cli(argv)
    except KeyboardInterrupt:
        return 130
