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
    NASA portrait (examples/astronaut.jpg), beside ``restore``'s result, with labels. Seed 5
    draws sepia toning and a crease that runs across the face (the case the likeness check is
    for); the damage strengths are fixed below."""
    import cv2

    rng = np.random.default_rng(5)
    aged = scan_damage.age(photo("astronaut.jpg", 448), rng)
    spec = scan_damage.DamageSpec(grain=11.0, scratches=4, dust=90, crease=True)
    scan = scan_damage.damage(aged, rng, spec)
    result = restore(scan)
    gap = np.full((scan.shape[0], 8, 3), 255, dtype=np.uint8)
    sheet = np.concatenate([aged, gap, scan, gap, result.image], axis=1)
    band = np.full((28, sheet.shape[1], 3), 255, dtype=np.uint8)
    gain = scan_damage.psnr(aged, result.image) - scan_damage.psnr(aged, scan)
    width = scan.shape[1] + 8
    labels = ("aged original (no damage)", "damaged scan (simulated)", f"restored (+{gain:.1f} dB)")
    for k, text in enumerate(labels):
        cv2.putText(
            band,
            text,
            (6 + k * width, 20),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.55,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    Image.fromarray(np.concatenate([band, sheet], axis=0)).save(path, optimize=True)
    from generation.faces import FaceModel
    from generation.quality import Likeness

    model = FaceModel()
    faces = model.find_faces(aged)
    likeness = "no face in the original"
    if faces:
        check = Likeness(model, aged, max(faces, key=lambda f: f.w * f.h))
        before_score, after_score = check.frame_identity(scan), check.frame_identity(result.image)
        likeness = f"scan {before_score:.3f}, restored {after_score:.3f} (against the original)"
    print(
        f"wrote {path}: {result.report.to_json()}, PSNR gain {gain:.1f} dB, likeness {likeness}, "
        f"notes {list(result.notes)}"
    )


# Held out from the tests (tests/test_restore.py uses other photos, sizes and seeds): photo,
# long side, seed. Strengths, toning and which damage appear are drawn per seed.
HELD_OUT = [
    ("ex:grace_hopper", 300, 101),
    ("immunohistochemistry", 700, 102),
    ("horse", 500, 103),
    ("ex:chelsea", 1600, 104),
    ("coins", 384, 105),
    ("moon", 512, 106),
    ("brick", 420, 107),
    ("retina", 1000, 108),
    ("ex:grace_hopper", 900, 109),
    ("coffee", 1200, 110),
    ("camera", 640, 111),
    ("astronaut", 1600, 112),
    ("rocket", 800, 113),
    ("chelsea", 350, 114),
]
HELD_OUT_CLEAN = ["ex:grace_hopper", "immunohistochemistry", "horse", "retina", "rocket", "coins"]


def held_out() -> None:
    """PSNR gain on the held-out damaged scans, and clean photos through ``restore`` (auto)."""
    from test_restore import resized, sample  # type: ignore[import-not-found]

    gains = []
    for name, side, seed in HELD_OUT:
        rng = np.random.default_rng(seed)
        aged = scan_damage.age(resized(sample(name), side), rng)
        scan = scan_damage.damage(aged, rng, scan_damage.DamageSpec.random(rng))
        started = time.perf_counter()
        result = restore(scan)
        ms = 1000 * (time.perf_counter() - started)
        before, after = scan_damage.psnr(aged, scan), scan_damage.psnr(aged, result.image)
        gains.append(after - before)
        print(
            f"{name:22s} {side:5d} px  {before:5.1f} -> {after:5.1f} dB  ({after - before:+.1f})  {ms:.0f} ms"
        )
    print(
        f"mean gain {np.mean(gains):+.2f} dB, worst {min(gains):+.2f} dB, best {max(gains):+.2f} dB"
    )
    for name in HELD_OUT_CLEAN:
        for side in (400, 1400):
            photo_ = resized(sample(name), side)
            result = restore(photo_)
            psnr = scan_damage.psnr(photo_, result.image)
            print(f"clean {name} {side} px: restored={result.restored}, PSNR {psnr:.1f} dB")


def _at_long_side(image: NDArray[np.uint8], side: int) -> NDArray[np.uint8]:
    import cv2

    height, width = image.shape[:2]
    factor = side / max(height, width)
    size = (round(width * factor), round(height * factor))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def working_size(runs: int) -> None:
    """``animate``'s pre-pass at the working size (512 px) for a 512-px and a 1600-px scan, and
    ``livingphoto restore`` (full size) of both."""
    from generation.restore import restore_working

    for side in (512, 1600):
        image = photo("chelsea.jpg", side)
        rng = np.random.default_rng(7)
        aged = scan_damage.age(image, rng)
        scan = scan_damage.damage(aged, rng, scan_damage.DamageSpec(grain=10, scratches=3, dust=60))
        # What animate renders: the scan at 512 px (the same array at 512 already).
        work = scan if side == 512 else _at_long_side(scan, 512)
        at_work = median_ms(functools.partial(restore_working, scan, work, "auto"), runs)
        full = median_ms(functools.partial(restore, scan), max(1, runs // 2))
        print(
            f"{side} px scan: animate pre-pass at 512 px {at_work:.0f} ms; restore full size {full:.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--picture", type=Path, help="only write the README's before/after PNG to this path"
    )
    parser.add_argument("--held-out", action="store_true", help="only the held-out PSNR set")
    parser.add_argument("--working-size", action="store_true", help="only the ms/photo figures")
    args = parser.parse_args()
    if args.held_out:
        held_out()
        return
    if args.working_size:
        working_size(args.runs)
        return
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
