"""Exceptions: `ZeroImageError` and one subclass per error kind of the core.

Every exception's message (`str(exc)`, also `exc.message`) is the core's report: exactly what
the CLI prints after ``error: ``, hint lines included.
"""

from __future__ import annotations

import errno
from typing import ClassVar

__all__ = [
    "AuthError",
    "CancelledError",
    "IntegrityError",
    "InvalidInputError",
    "InvalidOptionError",
    "IoError",
    "NetworkError",
    "NotFoundError",
    "ProgramNotFoundError",
    "RegistryError",
    "UnsupportedError",
    "ZeroImageError",
]


class ZeroImageError(Exception):
    """Any error from zeroimage. ``kind`` is the core's stable error kind (``"not_found"``, …)."""

    kind: ClassVar[str] = ""
    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInputError(ZeroImageError):
    """Something given was malformed: a reference, platform, option, output, or the program itself
    (a directory, a dynamically linked program on scratch, the wrong architecture)."""

    kind = "invalid_input"


class InvalidOptionError(InvalidInputError, TypeError):
    """A keyword argument is not an option, or its value has the wrong shape (``tag=5``).

    Also a `TypeError`, which is what Python raises for a bad call. The message names the
    option and, for an unknown one, the nearest valid name (``did you mean base?``).
    """


class NotFoundError(ZeroImageError):
    """Something named does not exist: the program, a base image, a tag."""

    kind = "not_found"


class ProgramNotFoundError(NotFoundError, FileNotFoundError):
    """The program to package does not exist.

    Also a `FileNotFoundError`, so ``except FileNotFoundError`` and ``except OSError`` catch it
    the way they catch ``open()`` of a missing file: ``errno`` is ``ENOENT`` and ``filename``
    the program path. ``str()`` is still the core's report.
    """

    def __init__(self, message: str, filename: str) -> None:
        FileNotFoundError.__init__(self, errno.ENOENT, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type[ProgramNotFoundError], tuple[str, str]]:
        return (type(self), (self.message, self.filename))


class AuthError(ZeroImageError):
    """A registry refused the credentials, or none were available."""

    kind = "auth"


class RegistryError(ZeroImageError):
    """A registry answered with an error that changing the input will not fix."""

    kind = "registry"


class NetworkError(ZeroImageError):
    """The network failed: connection refused, reset, timeout, TLS."""

    kind = "network"


class IoError(ZeroImageError, OSError):
    """Reading or writing a local file failed (the message names the file and the operation).

    Also an `OSError`, so ``except OSError`` catches it: ``errno`` is the operating system's
    error number and ``filename`` the file, where known (else ``None``). ``str()`` is still the
    core's report.
    """

    kind = "io"

    def __init__(self, message: str, errno: int | None = None, filename: str | None = None) -> None:
        OSError.__init__(self, errno, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type[IoError], tuple[str, int | None, str | None]]:
        return (type(self), (self.message, self.errno, self.filename))


class IntegrityError(ZeroImageError):
    """Content did not match its digest, or an archive is corrupt or hostile."""

    kind = "integrity"


class UnsupportedError(ZeroImageError):
    """The input is well-formed but asks for something zeroimage does not do (yet)."""

    kind = "unsupported"


class CancelledError(ZeroImageError):
    """The build was cancelled; nothing was written."""

    kind = "cancelled"


_BY_KIND: dict[str, type[ZeroImageError]] = {
    cls.kind: cls
    for cls in (
        InvalidInputError,
        NotFoundError,
        AuthError,
        RegistryError,
        NetworkError,
        IoError,
        IntegrityError,
        UnsupportedError,
        CancelledError,
    )
}


def _from_core(
    kind: str,
    message: str,
    *,
    program: str | None = None,
    errno: int | None = None,
    filename: str | None = None,
    option: bool = False,
) -> ZeroImageError:
    """The exception for a core error (called by the native module)."""
    if program is not None:
        return ProgramNotFoundError(message, program)
    if option:
        return InvalidOptionError(message)
    if kind == "io":
        return IoError(message, errno, filename)
    # A kind added to the core before this table learns it still raises a ZeroImageError.
    return _BY_KIND.get(kind, ZeroImageError)(message)
