"""The GIL is released for the whole build; progress events; cancellation."""

from __future__ import annotations

import itertools
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
    """Two builds of 64 MiB programs in two threads interleave their progress events.

    The callback is a C function (`list.append`), so it never runs Python bytecode: were the
    GIL held for a build, the interpreter could not switch threads during it, and every event
    of one build would come before every event of the other. Released, both builds run at
    once (in parallel on two cores, time-sliced by the OS on one) and their events alternate.
    The programs differ in size so that `total` tells the builds apart."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copy2(programs["big"], a)
    shutil.copy2(programs["big"], b)
    with open(b, "ab") as f:
        f.write(b"\0" * 4096)
    log: list[zeroimage.Progress] = []
    results: dict[Path, zeroimage.BuildResult] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def build(program: Path) -> None:
        try:
            start.wait()
            results[program] = zeroimage.build_image(
                program, output=str(tmp_path / f"{program.name}.tar"), progress=log.append
            )
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=build, args=(p,)) for p in (a, b)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    assert not errors, errors
    sizes = {a.stat().st_size: "a", b.stat().st_size: "b"}
    owners = [sizes[e.total] for e in log if e.stage == "layer" and e.total is not None]
    assert owners.count("a") > 32 and owners.count("b") > 32
    switches = sum(1 for x, y in itertools.pairwise(owners) if x != y)
    print(f"two builds in {wall:.2f}s; the progress events switched builds {switches} times")
    assert switches >= 4, f"the builds ran one after the other: {''.join(owners)}"
    assert results[a].digest != results[b].digest


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
    assert during > 200, (elapsed, during)


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
