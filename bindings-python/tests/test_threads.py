"""The GIL is released for the whole build; progress events; cancellation."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

import oci
import zeroimage


def test_progress_events(workdir: Path) -> None:
    events: list[zeroimage.Progress] = []
    threads: set[int] = set()

    def record(event: zeroimage.Progress) -> None:
        events.append(event)
        threads.add(threading.get_ident())

    zeroimage.build_image("./hello", output="p.tar", progress=record)
    size = (workdir / "hello").stat().st_size
    assert all(isinstance(e, zeroimage.Progress) for e in events)
    stages = [e.stage for e in events]
    assert stages[0] == "layer" and stages[-1] == "write"
    assert stages == sorted(stages, key=["layer", "write"].index), "stages run in order"
    layer = [e for e in events if e.stage == "layer"]
    write = [e for e in events if e.stage == "write"]
    assert layer[0].current == 0 and layer[-1].current == size
    assert all(e.total == size for e in layer)
    for stage in (layer, write):
        currents = [e.current for e in stage]
        assert currents == sorted(currents)
        assert stage[-1].current == stage[-1].total
    # The archive holds manifest, config, layer and metadata: more than the layer.
    assert write[-1].total is not None and write[-1].total >= (workdir / "p.tar").stat().st_size // 2
    # The callback runs on the build's own thread, not the caller's.
    assert threading.get_ident() not in threads


def test_two_builds_in_threads_overlap(tmp_path: Path, programs: dict[str, Path]) -> None:
    """Each build compresses 64 MiB; with the GIL held, the second could not start before
    the first ended. The first and last progress events of each build bound its run time."""
    spans: dict[str, list[float]] = {"a": [], "b": []}
    results: dict[str, zeroimage.BuildResult] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def build(name: str) -> None:
        try:
            start.wait()
            results[name] = zeroimage.build_image(
                programs["big"],
                output=str(tmp_path / f"{name}.tar"),
                progress=lambda e: spans[name].append(time.monotonic()),
            )
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=build, args=(n,)) for n in ("a", "b")]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    assert not errors, errors
    a0, a1 = spans["a"][0], spans["a"][-1]
    b0, b1 = spans["b"][0], spans["b"][-1]
    overlap = min(a1, b1) - max(a0, b0)
    shorter = min(a1 - a0, b1 - b0)
    print(f"build a {a1 - a0:.2f}s, build b {b1 - b0:.2f}s, overlap {overlap:.2f}s, wall {wall:.2f}s")
    assert overlap > 0.5 * shorter, (
        f"builds did not run at the same time: a={a0:.2f}..{a1:.2f} b={b0:.2f}..{b1:.2f}"
    )
    assert results["a"].digest == results["b"].digest


def test_python_threads_run_during_a_build(tmp_path: Path, programs: dict[str, Path]) -> None:
    ticks = 0
    done = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        t0 = time.monotonic()
        before = ticks
        zeroimage.build_image(programs["big"], output=str(tmp_path / "big.tar"))
        elapsed = time.monotonic() - t0
        during = ticks - before
    finally:
        done.set()
        counter.join()
    print(f"build {elapsed:.2f}s, {during} ticks of another Python thread meanwhile")
    # With the GIL held for the build the counter would not move at all.
    assert during > 20, (elapsed, during)


def test_progress_exception_stops_the_build(workdir: Path) -> None:
    class Stop(Exception):
        pass

    calls = 0

    def stop(event: zeroimage.Progress) -> None:
        nonlocal calls
        calls += 1
        raise Stop(event.stage)

    before = sorted(os.listdir(workdir))
    with pytest.raises(Stop, match="layer"):
        zeroimage.build_image("./hello", output="s.tar", progress=stop)
    assert calls == 1
    assert sorted(os.listdir(workdir)) == before, "nothing written, no temp files"


def test_ctrl_c_cancels_the_build(tmp_path: Path, programs: dict[str, Path]) -> None:
    """SIGINT while the main thread waits for a build: KeyboardInterrupt, nothing written."""
    big = tmp_path / "big"
    shutil.copy2(programs["big"], big)
    started = threading.Event()
    timer = threading.Thread(target=lambda: (started.wait(30), signal.raise_signal(signal.SIGINT)))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        zeroimage.build_image(big, output=str(tmp_path / "c.tar"), progress=lambda e: started.set())
    elapsed = time.monotonic() - t0
    timer.join()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big"], "nothing written, no temp files"
    # The build was stopped early, not run to the end: a full build takes over a second.
    t1 = time.monotonic()
    zeroimage.build_image(big, output=str(tmp_path / "full.tar"))
    full = time.monotonic() - t1
    print(f"cancelled after {elapsed:.2f}s; a full build takes {full:.2f}s")
    assert elapsed < full
    oci.read_archive(tmp_path / "full.tar")
