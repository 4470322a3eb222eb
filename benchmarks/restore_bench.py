"""Speed and memory of the restoration pre-pass (``generation.restore``).

Usage::

    .venv/bin/python benchmarks/restore_bench.py [--runs 5]

Prints, as medians over ``--runs``:

- the ``auto`` check alone (``analyse``) on clean photos (examples/astronaut.jpg at 512 px, and
  examples/chelsea.jpg scaled to 1600 px), which is all ``animate --restore auto`` adds for them;
- ``restore`` of damaged scans built by ``tests/scan_damage.py`` from the same photos (512 px
  and 1600 px long side), with the PSNR gain against the undamaged aged original;
- ``Animator.animate`` (warp, 3 variations x 3 s x 24 fps, 512 px) of the clean photo with
  ``restore="off"`` (the floor) and ``"auto"``, and their ratio;
- peak resident memory of this process (``ru_maxrss``) and its growth over the restorations.
Goal: the auto check costs < 5 % of ``animate`` on a clean photo (ratio auto/off <= 1.05).
"""

from __future__ import annotations

import argparse
import functools
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil  # type: ignore[import-untyped]
from numpy.typing import NDArray
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import scan_damage  # type: ignore[import-not-found]  # noqa: E402

from generation.restore import RestoreMode, analyse, restore  # noqa: E402


def photo(name: str, long_side: int) -> NDArray[np.uint8]:
    im = Image.open(ROOT / "examples" / name).convert("RGB")
    scale = long_side / max(im.size)
    size = (round(im.size[0] * scale), round(im.size[1] * scale))
    return np.asarray(im.resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000.0 * statistics.median(times)


def before_after(path: Path) -> None:
    """The README picture: a scan damaged by ``tests/scan_damage.py`` from the public-domain
    NASA portrait (examples/astronaut.jpg), beside ``restore``'s result, with labels."""
    import cv2

    rng = np.random.default_rng(1969)
    aged = scan_damage.age(photo("astronaut.jpg", 448), rng)
    spec = scan_damage.DamageSpec(grain=11.0, scratches=4, dust=90, crease=True)
    scan = scan_damage.damage(aged, rng, spec)
    result = restore(scan)
    gap = np.full((scan.shape[0], 8, 3), 255, dtype=np.uint8)
    sheet = np.concatenate([scan, gap, result.image], axis=1)
    band = np.full((28, sheet.shape[1], 3), 255, dtype=np.uint8)
    gain = scan_damage.psnr(aged, result.image) - scan_damage.psnr(aged, scan)
    for x, text in (
        (6, "damaged scan (simulated)"),
        (scan.shape[1] + 14, f"restored (+{gain:.1f} dB)"),
    ):
        cv2.putText(band, text, (x, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    Image.fromarray(np.concatenate([band, sheet], axis=0)).save(path, optimize=True)
    print(f"wrote {path}: {result.report.to_json()}, PSNR gain {gain:.1f} dB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--picture", type=Path, help="only write the README's before/after PNG to this path"
    )
    args = parser.parse_args()
    if args.picture:
        before_after(args.picture)
        return
    rss = psutil.Process()
    rows: list[tuple[str, str]] = []
    clean = {"512 px": photo("astronaut.jpg", 512), "1600 px": photo("chelsea.jpg", 1600)}
    for label, image in clean.items():
        assert not analyse(image).needs_restoring
        rows.append(
            (
                f"auto check, clean photo {label}",
                f"{median_ms(functools.partial(analyse, image), args.runs):.0f} ms",
            )
        )
    before = rss.memory_info().rss
    for label, image in clean.items():
        rng = np.random.default_rng(1)
        aged = scan_damage.age(image, rng)
        scan = scan_damage.damage(aged, rng, scan_damage.DamageSpec(grain=10, scratches=3, dust=60))
        result = restore(scan)
        gain = scan_damage.psnr(aged, result.image) - scan_damage.psnr(aged, scan)
        ms = median_ms(functools.partial(restore, scan), max(1, args.runs // 2))
        rows.append((f"restore, damaged scan {label}", f"{ms:.0f} ms (PSNR +{gain:.1f} dB)"))
    grown = (rss.memory_info().rss - before) / 2**20

    from generation.animator import AnimateOptions, Animator
    from generation.backends import make_backend

    animator = Animator(make_backend("warp"))
    animator.setup()
    data = (ROOT / "examples" / "astronaut.jpg").read_bytes()
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        modes: tuple[RestoreMode, ...] = ("off", "auto")
        for mode in modes:
            options = AnimateOptions(seed=1, restore=mode)
            run = functools.partial(
                animator.animate, data, "subtle blink", options, Path(tmp) / "out"
            )
            walls[mode] = median_ms(run, args.runs)
    rows.append(("animate, clean photo, --restore off (floor)", f"{walls['off']:.0f} ms"))
    rows.append(("animate, clean photo, --restore auto", f"{walls['auto']:.0f} ms"))
    rows.append(("ratio auto / off", f"{walls['auto'] / walls['off']:.3f} (goal <= 1.05)"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(
        ("peak RSS of this process", f"{peak:.0f} MB (restorations grew RSS {grown:+.0f} MB)")
    )
    width = max(len(name) for name, _ in rows)
    print(f"| {'what':<{width}} | median |")
    print(f"|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
