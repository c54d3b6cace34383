#!/usr/bin/env python3
"""Time image builders side by side and print one table (called by bench/run.sh).

Each case is a shell command run with `sh -c` in the work directory, after an untimed
`prep` command. Runs are interleaved (run 1 of every case, then run 2, ...) so that a
disturbance hits all tools alike. Wall time is the median; CPU time (user + sys) and peak
RSS come from GNU time (wait4), which covers the shell and every process it waited for.
Peak RSS is that of the largest single process of the tree, not a sum.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import time

GNU_TIME = "/usr/bin/time"


def run_timed(cmd, cwd):
    """Wall time (measured here), CPU seconds and peak RSS bytes (from GNU time, a small C
    program: a process forked from this Python would report Python's RSS as its peak)."""
    report = os.path.join(cwd, ".time")
    start = time.perf_counter()
    proc = subprocess.run([GNU_TIME, "-f", "%U %S %M", "-o", report, "sh", "-c", cmd], cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}")
    with open(report) as f:
        user, system, max_kib = f.read().split()[-3:]
    return wall, float(user) + float(system), int(max_kib) * 1024


def largest_blob_in_archive(path):
    with tarfile.open(path) as tar:
        return max(m.size for m in tar.getmembers() if m.isfile())


def largest_file(directory):
    sizes = [os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(directory) for f in fs]
    return max(sizes)


def output_size(case, cwd):
    kind, arg = case["size"]
    path = os.path.join(cwd, arg) if kind != "cmd" else None
    if kind == "archive":
        return largest_blob_in_archive(path)
    if kind == "dir":
        return largest_file(path)
    if kind == "file":
        return os.path.getsize(path)
    if kind == "cmd":
        out = subprocess.run(["sh", "-c", arg], cwd=cwd, check=True, capture_output=True).stdout
        return int(out.split()[0])
    raise ValueError(kind)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cases", required=True,
                   help="TSV file, one case a line: name label input reference prep cmd size-kind size-arg")
    p.add_argument("--workdir", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--markdown", help="also write the table (with date and machine) to this file")
    args = p.parse_args()

    with open("/proc/loadavg") as f:
        load_before = " ".join(f.read().split()[:3])
    keys = ["name", "label", "input", "reference", "prep", "cmd", "size_kind", "size_arg"]
    with open(args.cases) as f:
        cases = [dict(zip(keys, line.rstrip("\n").split("\t"))) for line in f if line.strip()]
    for case in cases:
        case["size"] = (case.pop("size_kind"), case.pop("size_arg"))
    results = {c["name"]: [] for c in cases}
    for run in range(args.runs):
        for case in cases:
            if case.get("prep"):
                subprocess.run(["sh", "-c", case["prep"]], cwd=args.workdir, check=True)
            results[case["name"]].append(run_timed(case["cmd"], args.workdir))
            print(f"  run {run + 1}/{args.runs}: {case['name']}: {results[case['name']][-1][0]:.3f} s",
                  file=sys.stderr, flush=True)

    rows = []
    by_name = {}
    for case in cases:
        runs = results[case["name"]]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rss = max(r[2] for r in runs)
        size = output_size(case, args.workdir)
        by_name[case["name"]] = (wall, size)
        rows.append((case, wall, cpu, rss, size))

    header = ["tool", "input", "wall (median)", "wall / pipeline", "CPU", "peak RSS", "layer size",
              "size / gzip -6"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case, wall, cpu, rss, size in rows:
        ref_wall, ref_size = by_name.get(case["reference"], (None, None))
        lines.append("| " + " | ".join([
            case["label"].replace("|", "\\|"),
            case["input"],
            f"{wall:.3f} s",
            f"{wall / ref_wall:.2f}" if ref_wall else "",
            f"{cpu:.2f} s",
            f"{rss / 2**20:.1f} MiB",
            f"{size / 1e6:.2f} MB",
            f"{size / ref_size:.3f}" if ref_size else "",
        ]) + " |")
    table = "\n".join(lines)
    print(table)

    if args.markdown:
        cpu_model = "unknown CPU"
        try:
            with open("/proc/cpuinfo") as f:
                cpu_model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
        machine = (f"{platform.system()} {platform.release()}, {cpu_model}, {os.cpu_count()} cores "
                   f"(load average before the run: {load_before})")
        with open(args.markdown, "w") as f:
            f.write(f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on {machine}; "
                    f"median of {args.runs} interleaved runs.\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
