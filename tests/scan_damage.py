"""A damage simulator for old photo scans: ageing first, then grain, scratches, dust and a crease.

``age(rgb, rng)`` turns a clean photo into the "undamaged aged original" (sepia or grey toning,
fading, slight print softness, vignetting); ``damage(aged, rng, ...)`` adds what a scanner sees
on an old print: film grain (luminance-dependent, slightly clumped, monochrome), long thin
scratches (bright or dark, gently curved, varying along their length), dust (small irregular
specks and a few short fibres) and a crease (an edge-to-edge fold with a bright cracked core and a
shading band). ``DamageSpec`` draws every strength at random, so tests vary seeds, strengths,
content and sizes instead of tuning to one example. Everything is NumPy + OpenCV; deterministic
per ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[np.uint8]


@dataclass(frozen=True)
class DamageSpec:
    """How much of each kind of damage to add (0 = none of that kind)."""

    grain: float = 10.0  # noise standard deviation in 8-bit levels at mid-grey
    scratches: int = 3
    dust: int = 60  # specks per megapixel-equivalent of a 512 px image
    crease: bool = True

    @staticmethod
    def random(rng: np.random.Generator) -> DamageSpec:
        return DamageSpec(
            grain=float(rng.uniform(5.0, 16.0)),
            scratches=int(rng.integers(1, 7)),
            dust=int(rng.integers(20, 140)),
            crease=bool(rng.random() < 0.6),
        )


def age(rgb: Image, rng: np.random.Generator) -> Image:
    """The aged, undamaged print: toned (sepia or neutral grey), faded, a little soft, vignetted."""
    height, width = rgb.shape[:2]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    softness = float(rng.uniform(0.0, 0.9))
    if softness > 0.2:
        grey = cv2.GaussianBlur(grey, (0, 0), softness)
    # Fading: lifted blacks, lowered whites, a gentle curve.
    black = float(rng.uniform(0.05, 0.2))
    white = float(rng.uniform(0.8, 0.95))
    gamma = float(rng.uniform(0.8, 1.2))
    faded = black + (white - black) * np.power(np.clip(grey, 0, 1), gamma)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
    faded = faded * (1.0 - float(rng.uniform(0.0, 0.15)) * r2 / 2)
    if rng.random() < 0.75:  # sepia
        tone = np.array([1.0, 0.86, 0.68], dtype=np.float32) * float(rng.uniform(0.95, 1.08))
        shadows = np.array([0.1, 0.05, 0.0], dtype=np.float32) * float(rng.uniform(0.3, 1.0))
        out = faded[:, :, None] * tone + shadows * (1 - faded[:, :, None])
    else:
        out = np.repeat(faded[:, :, None], 3, axis=2)
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def damage(aged: Image, rng: np.random.Generator, spec: DamageSpec | None = None) -> Image:
    """``aged`` with grain, scratches, dust and a crease as ``spec`` (random if None) says."""
    spec = spec or DamageSpec.random(rng)
    height, width = aged.shape[:2]
    scale = max(height, width) / 512.0
    img = aged.astype(np.float32)
    # The print's own tone, so damage can be drawn as "paper showing through" or "dirt".
    luma = img.mean(axis=2, keepdims=True)
    tint = img / np.maximum(luma, 1.0)

    lum = luma[:, :, 0].copy()
    if spec.grain > 0:
        noise = rng.normal(0.0, 1.0, (height, width)).astype(np.float32)
        clump = float(rng.uniform(0.0, 0.7))
        if clump > 0.3:
            noise = cv2.GaussianBlur(noise, (0, 0), clump)
            noise /= max(float(noise.std()), 1e-6)
        # Silver grain shows most in the mid-tones.
        weight = 0.6 + 1.6 * (lum / 255.0) * (1 - lum / 255.0)
        lum = lum + spec.grain * weight * noise

    for _ in range(spec.scratches):
        lum = _scratch(lum, rng, scale)
    if spec.crease:
        lum = _crease(lum, rng, scale)
    count = round(spec.dust * (height * width) / float(max(height, width)) ** 2)
    for _ in range(count):
        lum = _speck(lum, rng, scale)
    for _ in range(int(rng.integers(0, 3))):
        lum = _fibre(lum, rng, scale)

    out = lum[:, :, None] * tint
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _paint(
    lum: NDArray[np.float32], mask: NDArray[np.float32], value: float
) -> NDArray[np.float32]:
    """Blend ``value`` into ``lum`` with coverage ``mask`` (0..1)."""
    return lum * (1 - mask) + value * mask


def _curve(rng: np.random.Generator, height: int, width: int, length: float) -> NDArray[np.int32]:
    """A gently curved polyline of about ``length`` pixels somewhere in the picture."""
    x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
    angle = rng.uniform(0, np.pi)
    if rng.random() < 0.6:  # scanned-print scratches are often near vertical
        angle = np.pi / 2 + rng.normal(0, 0.2)
    bend = rng.normal(0, 0.0015)
    points = []
    steps = max(2, int(length / 6))
    x, y = x0, y0
    for _ in range(steps):
        points.append((x * 16, y * 16))
        x += 6 * np.cos(angle)
        y += 6 * np.sin(angle)
        angle += bend * 6
    return np.array(points, dtype=np.int32).reshape(-1, 1, 2)


def _scratch(
    lum: NDArray[np.float32], rng: np.random.Generator, scale: float
) -> NDArray[np.float32]:
    height, width = lum.shape
    length = rng.uniform(0.15, 0.9) * max(height, width)
    pts = _curve(rng, height, width, length)
    mask = np.zeros_like(lum)
    thickness = max(1, round(rng.uniform(1.0, 2.6) * min(scale, 2.0)))
    cv2.polylines(mask, [pts], False, 1.0, thickness, cv2.LINE_AA, shift=4)
    # Scratches fade in and out along their length.
    along = cv2.GaussianBlur(rng.uniform(0.4, 1.0, lum.shape).astype(np.float32), (0, 0), 12)
    along = np.clip((along - along.min()) / max(float(np.ptp(along)), 1e-6) * 0.6 + 0.4, 0, 1)
    mask *= along
    value = rng.uniform(215, 255) if rng.random() < 0.7 else rng.uniform(0, 40)
    return _paint(lum, mask, value)


def _crease(
    lum: NDArray[np.float32], rng: np.random.Generator, scale: float
) -> NDArray[np.float32]:
    height, width = lum.shape
    vertical = rng.random() < 0.5
    n = 8
    t = np.linspace(-0.05, 1.05, n)
    offset = rng.uniform(0.2, 0.8)
    tilt = rng.uniform(-0.15, 0.15)
    jitter = rng.normal(0, 0.006, n)
    if vertical:
        xs = (offset + tilt * t + jitter) * width
        ys = t * height
    else:
        xs = t * width
        ys = (offset + tilt * t + jitter) * height
    pts = np.stack([xs * 16, ys * 16], axis=1).astype(np.int32).reshape(-1, 1, 2)
    core = np.zeros_like(lum)
    thickness = max(2, round(rng.uniform(2.0, 4.0) * min(scale, 2.0)))
    cv2.polylines(core, [pts], False, 1.0, thickness, cv2.LINE_AA, shift=4)
    # Shading on one side of the fold (the paper bent towards the light).
    band = np.zeros_like(lum)
    cv2.polylines(band, [pts], False, 1.0, thickness * 6, cv2.LINE_AA, shift=4)
    band = cv2.GaussianBlur(band, (0, 0), thickness * 2.0)
    lum = lum * (1 - float(rng.uniform(0.03, 0.1)) * band)
    # The cracked core: paper showing through, broken in places.
    cracks = cv2.GaussianBlur(rng.uniform(0, 1, lum.shape).astype(np.float32), (0, 0), 3)
    cracks = (cracks > np.percentile(cracks, 25)).astype(np.float32)
    return _paint(lum, core * cracks * float(rng.uniform(0.75, 1.0)), float(rng.uniform(225, 250)))


def _speck(lum: NDArray[np.float32], rng: np.random.Generator, scale: float) -> NDArray[np.float32]:
    height, width = lum.shape
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    radius = rng.uniform(0.6, 2.8) * max(scale, 1.0)
    mask = np.zeros_like(lum)
    axes = (max(1, round(radius * 16)), max(1, round(radius * rng.uniform(0.5, 1.0) * 16)))
    cv2.ellipse(
        mask,
        (round(cx * 16), round(cy * 16)),
        axes,
        float(rng.uniform(0, 180)),
        0,
        360,
        1.0,
        -1,
        cv2.LINE_AA,
        shift=4,
    )
    value = rng.uniform(220, 255) if rng.random() < 0.6 else rng.uniform(0, 45)
    return _paint(lum, mask * float(rng.uniform(0.7, 1.0)), value)


def _fibre(lum: NDArray[np.float32], rng: np.random.Generator, scale: float) -> NDArray[np.float32]:
    height, width = lum.shape
    length = rng.uniform(15, 45) * scale
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    angle = rng.uniform(0, 2 * np.pi)
    points = []
    for _ in range(int(length / 3)):
        points.append((x * 16, y * 16))
        x += 3 * np.cos(angle)
        y += 3 * np.sin(angle)
        angle += rng.normal(0, 0.35)
    mask = np.zeros_like(lum)
    cv2.polylines(
        mask, [np.array(points, dtype=np.int32).reshape(-1, 1, 2)], False, 1.0, 1, cv2.LINE_AA, 4
    )
    value = rng.uniform(225, 255) if rng.random() < 0.5 else rng.uniform(0, 40)
    return _paint(lum, mask, value)


def psnr(a: Image, b: Image) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
