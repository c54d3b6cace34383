"""Awaitable versions of `build_image`, `write_base`, `login` and `logout`.

Each runs the call on a worker thread (the event loop's default executor) with the GIL
released, so the event loop keeps turning. Cancelling the awaiting task cancels the work:
``build_image`` and ``write_base`` stop through a `CancelToken`, nothing is written and no
temporary file is left, and the task's `asyncio.CancelledError` is raised only once the worker
has stopped. ``login`` and ``logout`` are short requests that cannot be interrupted: a cancelled
task waits for them to finish, then raises `asyncio.CancelledError`.

    >>> import asyncio, zeroimage.aio
    >>> result = asyncio.run(zeroimage.aio.build_image("./hello", output="hello.tar"))

``progress`` and ``log`` callbacks run on the worker thread, not on the event loop: use
``loop.call_soon_threadsafe`` from them to touch loop-bound objects.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from zeroimage import _zeroimage
from zeroimage._zeroimage import BuildResult, CancelToken

__all__ = ["build_image", "login", "logout", "write_base"]

T = TypeVar("T")


async def build_image(entrypoint: str | os.PathLike[str], /, **options: Any) -> BuildResult:
    """`zeroimage.build_image`, awaitable; cancelling the task cancels the build."""
    return await _run(functools.partial(_zeroimage.build_image, entrypoint, **_no_cancel(options)), True)


async def write_base(base: str = "builtin:static", /, **options: Any) -> BuildResult:
    """`zeroimage.write_base`, awaitable; cancelling the task cancels the write."""
    return await _run(functools.partial(_zeroimage.write_base, base, **_no_cancel(options)), True)


async def login(registry: str, username: str, password: str, /, **options: Any) -> str:
    """`zeroimage.login`, awaitable."""
    return await _run(functools.partial(_zeroimage.login, registry, username, password, **options), False)


async def logout(registry: str, /) -> bool:
    """`zeroimage.logout`, awaitable."""
    return await _run(functools.partial(_zeroimage.logout, registry), False)


def _no_cancel(options: dict[str, Any]) -> dict[str, Any]:
    if "cancel" in options:
        raise TypeError("zeroimage.aio calls take no cancel=: cancel the task that awaits them")
    return options


async def _run(call: Callable[..., T], cancellable: bool) -> T:
    token = CancelToken() if cancellable else None
    if token is not None:
        call = functools.partial(call, cancel=token)
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    future = loop.run_in_executor(None, functools.partial(context.run, call))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if token is not None:
            token.cancel()
        # Wait for the worker to stop, so that once the task is cancelled nothing more is
        # written; further cancellations only repeat the wait.
        while not future.done():
            try:
                await asyncio.wait([future])
            except asyncio.CancelledError:
                continue
        if not future.cancelled():
            future.exception()  # retrieved: the build's own CancelledError is expected here
        raise
