"""CPU benchmark of ``livingphoto animate`` with the warp backend.

Usage::

    .venv/bin/python benchmarks/animate_cpu.py [--runs 5] [--photo examples/astronaut.jpg]

Each run is a fresh Python process (so start-up and imports count, as they do for a user) that
animates 3 variations x 3 s x 24 fps at 512 px and reports its stage timings. The table shows the
median of the runs for each stage, the whole process wall time, and the peak resident memory:
the Python process itself (``getrusage`` ``ru_maxrss``, which the parent also sees as its largest
child) and the whole process tree including the concurrent ffmpeg encoders (summed RSS sampled
every 10 ms with psutil; ``ru_maxrss`` of an exec'd child would count the parent's pages it was
forked from, so it cannot measure ffmpeg alone).
The last row times the real command (``python -m livingphoto animate``), which also imports
every other subcommand's module at start-up.
Goal on a 2-core machine: whole run < 3 s wall, < 600 MB peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("decode", "detect", "warp", "encode", "score", "sheet", "total")
PROMPT = "subtle blink, slight head tilt, gentle breathing"

CHILD = """
import json, resource, sys, time
started = time.perf_counter()
from pathlib import Path
from generation.animator import AnimateOptions, Animator
from generation.backends import make_backend
imports = time.perf_counter() - started
photo, out, prompt = sys.argv[1], sys.argv[2], sys.argv[3]
animator = Animator(make_backend("warp"))
setup_start = time.perf_counter()
animator.setup()
setup = time.perf_counter() - setup_start
result = animator.animate(
    Path(photo).read_bytes(), prompt,
    AnimateOptions(variations=3, seconds=3.0, fps=24, size=512, seed=7), Path(out),
)
timings = dict(result.timings, imports=imports, setup=setup)
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({
    "timings": timings,
    "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
    "self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "frames": sum(1 for _ in Path(out).glob("variation-*.mp4")),
}))
"""


def run_once(photo: Path, python: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lp-bench-") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [python, "-c", CHILD, str(photo), out, PROMPT],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        tree_peak = _watch_tree(process)
        stdout, stderr = process.communicate()
        wall = time.perf_counter() - started
        done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    if done.returncode != 0:
        raise SystemExit(f"benchmark run failed: {done.stderr.strip().splitlines()[-1:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    row: dict[str, float] = {k: float(v) for k, v in report["timings"].items()}
    row["wall"] = wall
    row["cpu"] = float(report["cpu_s"])
    row["self_mb"] = report["self_kb"] / 1024
    row["tree_mb"] = tree_peak / 2**20
    return row


def _watch_tree(process: subprocess.Popen[str]) -> int:
    """Sample the summed RSS of ``process`` and its children until it exits; return the peak."""
    peak = 0
    try:
        root = psutil.Process(process.pid)
    except psutil.NoSuchProcess:
        return 0
    while process.poll() is None:
        total = 0
        try:
            members = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for member in members:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += member.memory_info().rss
        peak = max(peak, total)
        time.sleep(0.01)
    return peak


def run_cli_once(photo: Path, python: str) -> float:
    """Wall time of the real command line, ``python -m livingphoto animate ...``."""
    with tempfile.TemporaryDirectory(prefix="lp-bench-cli-") as out:
        started = time.perf_counter()
        done = subprocess.run(
            [
                python,
                "-m",
                "livingphoto",
                "animate",
                str(photo),
                PROMPT,
                "--consent",
                "--seed",
                "7",
                "--out",
                out,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"CLI run failed: {done.stderr.strip().splitlines()[-1:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--photo", type=Path, default=ROOT / "examples" / "astronaut.jpg")
    args = parser.parse_args()
    rows = []
    for k in range(args.runs):
        row = run_once(args.photo, sys.executable)
        rows.append(row)
        print(f"run {k + 1}/{args.runs}: wall {row['wall']:.2f} s", file=sys.stderr)

    cli_walls = [run_cli_once(args.photo, sys.executable) for _ in range(args.runs)]
    for row, cli_wall in zip(rows, cli_walls, strict=True):
        row["cli_wall"] = cli_wall

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(
        f"livingphoto animate, warp backend: 3 variations x 3 s x 24 fps, 512 px, {args.photo.name}"
    )
    load = os.getloadavg()[0]
    print(
        f"median of {args.runs} runs, each in a fresh process; {os.cpu_count()} CPUs, "
        f"load average {load:.1f} when done (wall times grow with other load; CPU time does not)\n"
    )
    print(f"| {'stage':<28} | {'median':>9} | {'min':>9} | {'max':>9} |")
    print(f"|{'-' * 30}|{'-' * 11}|{'-' * 11}|{'-' * 11}|")
    labels = {
        "imports": "python imports",
        "setup": "setup (face detector)",
        "decode": "decode (intake)",
        "detect": "detect + crop + resize",
        "warp": "warp (render 216 frames)",
        "encode": "encode (3 x H.264, parallel)",
        "score": "score (overlaps encode)",
        "sheet": "contact sheet",
        "total": "animate() total",
        "wall": "whole process wall",
        "cli_wall": "`livingphoto animate` wall",
        "cpu": "CPU time, python + ffmpeg",
    }
    for key in ("imports", "setup", *STAGES, "wall", "cli_wall", "cpu"):
        values = [r[key] for r in rows]
        print(
            f"| {labels.get(key, key):<28} | {med(key):>7.3f} s | {min(values):>7.3f} s | "
            f"{max(values):>7.3f} s |"
        )
    print()
    print(f"| {'peak RSS':<28} | {'median':>9} |")
    print(f"|{'-' * 30}|{'-' * 11}|")
    print(f"| {'python process (getrusage)':<28} | {med('self_mb'):>6.0f} MB |")
    print(f"| {'whole tree incl. ffmpeg':<28} | {med('tree_mb'):>6.0f} MB |")
    verdict_time = "meets" if med("wall") < 3.0 else "MISSES"
    verdict_mem = "meets" if max(med("tree_mb"), med("self_mb")) < 600 else "MISSES"
    print(
        f"\ngoal < 3 s wall: {verdict_time} ({med('wall'):.2f} s); "
        f"goal < 600 MB: {verdict_mem} ({max(med('tree_mb'), med('self_mb')):.0f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
