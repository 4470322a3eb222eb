"""Restoration pre-pass for old photo scans: grain, dust, scratches and creases out; character kept.

Usage::

    from generation.restore import restore
    result = restore(rgb)            # mode "auto": clean photos come back untouched (same array)
    result.image, result.restored, result.report.to_json()

What is detected (all on the luma of the photo, in 8-bit levels; see ``analyse``):

- **grain**: robust median-absolute-deviation noise estimates, tile by tile, read at a low
  percentile so that flat areas (where only noise lives) set the level, not texture. Two bands:
  the residual of a 2-px Gaussian (white and clumped grain) and the finest diagonal Haar band (the
  estimator of ``skimage.restoration.estimate_sigma``, Donoho & Johnstone 1994). Grain must show in
  both: texture and text have little finest-band energy. Grain is also a spectrum that is the
  same whatever the scene: in the flattest tiles its energy two octaves down is well below the
  finest band's (white noise: a quarter), while natural texture (grass, gravel, fur) keeps a 1/f
  spectrum in every tile (``GRAIN_SLOPE``); and it is judged only on pictures with enough
  mid-tones (``MIDTONES``): a star field or a night sky is deep shadow with sensor noise. It is removed with OpenCV's non-local
  means (``fastNlMeansDenoisingColored``, Buades et al. 2005) at a strength that follows the
  estimate; the colour planes are smoothed more than luma, so sepia and fading stay as they are.
- **scratches and creases**: thin bright or dark ridges. A morphological white top-hat (bright)
  and black-hat (dark) with a small ellipse keeps structures about as thin as ``LINE_WIDTH`` (``CREASE_WIDTH`` for creases); an
  opening of that response with line segments in ``ORIENTATIONS`` directions keeps only those
  that stay thin over ``LINE_SEGMENT`` pixels in some direction (grain does not survive the
  minimum along a segment). Per orientation, a closing along the same direction joins broken
  pieces; connected components (hysteresis: weak pixels count if part of it is strong) must be
  long (``MIN_LINE_FRACTION`` of the long side), thin, and cross quiet areas. A line that crosses
  most of the picture (``CREASE_FRACTION``) is a crease.
- **dust**: small specks: top-hat/black-hat responses whose connected components fit in a few
  pixels, stand out strongly, and are alone in their neighbourhood.
- **guards against real detail**: thresholds scale with the grain and with the picture's own
  tonal range; ridges in busy areas (hair, fabric, foliage, text: many ridges close together) are
  not damage; a scratch must be paper-white or dirt-black, at the end of the picture's own tones
  (a mid-tone ridge is a seam, a cord, a rod); the eyes of detected faces are never inpainted
  (catchlights look like dust); after restoring, the face's likeness between the input and the
  restored photo (``generation.quality.Likeness``: face-recognition embeddings and eye spacing,
  as for animated takes) must reach ``IDENTITY_THRESHOLD``, or nothing is painted over on the
  face (its denoising stays). Denoising and a crease removed across a face keep the person.
- **auto** restores a photo that is grainy, or that has a crease or a long isolated scratch
  together with some grain or dust (see ``DamageReport.needs_restoring``); anything else is
  returned untouched, the very same array.

Damage is removed by OpenCV inpainting (``cv2.inpaint``, Telea's fast marching method) of the
dilated line and speck masks, after denoising. Photos above ``MAX_WORK_PIXELS`` are restored at
a reduced size and scaled back (``DamageReport.work_scale`` says so). ``restore_working`` decides
on the full photo and cleans a working-size copy (what ``animate`` renders), so a big scan costs
about as much as a small one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from livingphoto.resample import shrink

if TYPE_CHECKING:
    from generation.backend import FaceBox
    from generation.faces import FaceModel
    from moderation.intake import SanitizedImage

RestoreMode = Literal["auto", "on", "off"]
RESTORE_MODES: tuple[RestoreMode, ...] = ("auto", "on", "off")

Image = NDArray[np.uint8]
Float = NDArray[np.float32]

# Grain: below this noise level (8-bit levels) a photo is clean enough; JPEGs of modern cameras
# sit well below it after their own noise reduction.
GRAIN_MIN = 4.5
# Grain has finest-band energy of at least this share of its overall level; texture has less.
GRAIN_FINE_SHARE = 0.4
# Photos of many colours (``colour_variety`` above VIVID_VARIETY) are rarely old prints: their
# texture (foliage, fabric) must look like white noise before it counts as grain.
GRAIN_FINE_SHARE_VIVID = 0.7
VIVID_VARIETY = 12.0
# Grain is (nearly) white and the same everywhere, whatever the scene: in the flattest tiles of a
# grainy photo the diagonal Haar energy two octaves down is well below the finest band's (white
# noise: a quarter; clumped grain on a small photo up to ~0.9). Natural texture (grass, gravel,
# fur) has a 1/f spectrum in every tile: as much energy or more two octaves down (>= 1).
# GRAIN_SLOPE bounds the 10th percentile of that ratio over SLOPE_TILE-pixel tiles.
GRAIN_SLOPE = 0.97
SLOPE_TILE = 64
# Grain is judged where a print shows it, in tiles of MIDTONES levels; a picture with fewer than
# MIDTONE_SHARE of its tiles there (a star field, a night sky) is not judged grainy.
MIDTONES = (32.0, 223.0)
MIDTONE_SHARE = 0.15
# Detection geometry, in pixels of a photo whose long side is REFERENCE_SIDE (scaled with size).
REFERENCE_SIDE = 512
LINE_WIDTH = 2  # half-width of the scratch top-hat ellipse (ridges up to ~2x this wide)
CREASE_WIDTH = 5  # the same for creases
LINE_SEGMENT = 19  # an oriented opening needs the line to stay thin this long
ORIENTATIONS = 12
MIN_LINE_FRACTION = 0.1  # a scratch is at least this fraction of the long side
CREASE_FRACTION = 0.45  # a crease crosses at least this share of the long side
CREASE_MARGIN = 0.08  # ... reaches within this share of the picture from one side
CREASE_SPAN = 0.8  # ... and runs across this share of it
EVIDENCE_FRACTION = 0.3  # a scratch this long (share of the long side), in quiet areas, is damage
EXTREME_MARGIN = 0.1  # damage lies within this share of the tonal range of its ends
LINE_CONTRAST = 0.12  # a line stands out by at least this share of the picture's tonal range
QUIET_SHARE = 0.4  # a scratch must cross quiet areas for at least this share of its pixels
QUIET_SHARE_CREASE = 0.1  # a crease, which crosses everything, at least this share
DUST_RADIUS = 3  # top-hat ellipse half-width for specks
DUST_MAX_SIDE = 9  # specks fit in a box this wide
DUST_CONTRAST = 0.2  # a speck stands out by at least this share of the tonal range
SPECK_NOISE = 0.3  # share of the grain left after denoising
SPECK_NEIGHBOURS = 1.5  # ridge pixels allowed around a speck, per pixel of the speck
SPECK_NEAR = 0.4  # when restoring, the neighbourhood is this share of BUSY_RADIUS
DUST_MIN_COUNT = 6  # with a long scratch or crease, this many specks make a damaged scan
LINES_GRAIN = 4.0  # ... or this much grain (levels), below what counts as grainy
BUSY_RADIUS = 20  # neighbourhood (pixels) in which ridge density marks texture
BUSY_DENSITY = 0.16  # above this share of ridge pixels the area is texture (one line: < 0.1)
MAX_WORK_PIXELS = 6_000_000  # bigger photos are restored at a reduced size
GRAIN_SAMPLE = 768  # grain is measured on the central square of this side, native pixels
ANALYSIS_SIDE = 384  # the auto check looks for lines and specks at this long side


@dataclass(frozen=True)
class DamageReport:
    """What ``analyse`` found in one photo (counts are connected components)."""

    grain: float  # noise level, 8-bit levels
    grainy: bool  # grain above GRAIN_MIN that looks like noise, not texture
    scratches: int
    dust: int
    crease: int
    damaged_fraction: float  # share of pixels in the inpainting mask
    evidence: int = 0  # long isolated lines and creases: damage beyond doubt
    noise: float = 0.0  # the part of ``grain`` that looks like noise (GrainEstimate.noise)
    work_scale: float = 1.0  # < 1 when the photo was analysed at a reduced size

    @property
    def needs_restoring(self) -> bool:
        """The ``auto`` decision: grain; or a crease or long scratch together with some grain
        or dust. Lines alone are not enough: the towers, masts and rods of a clean photo look
        just like scratches and folds."""
        if self.grainy:
            return True
        # A crease or a long scratch with something else an old scan has: some grain or dust.
        lines = self.crease > 0 or self.evidence > 0
        return lines and (self.noise >= LINES_GRAIN or self.dust >= DUST_MIN_COUNT)

    def to_json(self) -> dict[str, Any]:
        return {
            "grain": round(self.grain, 2),
            "scratches": self.scratches,
            "dust": self.dust,
            "crease": self.crease,
        }

    def to_record(self) -> dict[str, Any]:
        """Every field, for a job ticket (``from_record`` reads it back unchanged)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> DamageReport:
        """The report ``to_record`` wrote. Raises ``KeyError``/``TypeError``/``ValueError``
        for a record that is not one."""
        return cls(
            grain=float(record["grain"]),
            grainy=bool(record["grainy"]),
            scratches=int(record["scratches"]),
            dust=int(record["dust"]),
            crease=int(record["crease"]),
            damaged_fraction=float(record["damaged_fraction"]),
            evidence=int(record["evidence"]),
            noise=float(record["noise"]),
            work_scale=float(record["work_scale"]),
        )


@dataclass(frozen=True)
class RestoreResult:
    """The photo after the pre-pass. ``image is`` the input array when nothing was changed."""

    image: Image
    restored: bool
    report: DamageReport
    likeness: float | None = None  # identity score input -> output on the main face, if any
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{"restored": bool, "restoration": {grain, scratches, dust, crease[, likeness]}}``."""
        found = self.report.to_json()
        if self.likeness is not None:
            found["likeness"] = round(self.likeness, 4)
        return {"restored": self.restored, "restoration": found}


@dataclass(frozen=True)
class GrainEstimate:
    """Noise levels of a grey image in 8-bit levels (see ``estimate_grain``)."""

    sigma: float  # residual of a 2-px Gaussian: white and clumped grain alike
    fine: float  # finest diagonal Haar band: white noise, little texture
    vivid: bool = False  # a colourful photo (old prints are toned or faded): needs finer grain
    slope: float = 0.0  # coarse / fine Haar energy in the flattest tiles (see GRAIN_SLOPE)
    midtones: float = 1.0  # share of tiles in MIDTONES, where grain shows

    @property
    def white(self) -> bool:
        """The fine energy has a flat spectrum in flat tiles (grain), not the 1/f of texture."""
        return self.fine > 0.0 and self.slope <= GRAIN_SLOPE

    @property
    def noise(self) -> float:
        """The grain level, discounted when it lacks the fine energy of noise (texture, text);
        0 when the spectrum is not white or there are too few mid-tones to judge."""
        if not self.white or self.midtones < MIDTONE_SHARE:
            return 0.0
        return min(self.sigma, 1.5 * self.fine)

    @property
    def grainy(self) -> bool:
        """Visible grain: above ``GRAIN_MIN``, noise-like (texture has little fine energy and a
        1/f spectrum, see ``white``) and judged on enough mid-tones."""
        share = GRAIN_FINE_SHARE_VIVID if self.vivid else GRAIN_FINE_SHARE
        return (
            self.sigma >= GRAIN_MIN
            and self.fine >= share * self.sigma
            and self.white
            and self.midtones >= MIDTONE_SHARE
        )


@dataclass
class _Masks:
    lines: NDArray[np.bool_]
    specks: NDArray[np.bool_]
    scratches: int = 0
    crease: int = 0
    dust: int = 0
    evidence: int = 0  # lines long and isolated enough to call a photo damaged

    @staticmethod
    def empty(shape: tuple[int, ...]) -> _Masks:
        return _Masks(lines=np.zeros(shape[:2], dtype=bool), specks=np.zeros(shape[:2], dtype=bool))


# ------------------------------------------------------------------------------------------------
# Measurements


def luma(rgb: Image) -> Float:
    """Rec. 601 luma of an (H, W, 3) uint8 RGB image, float32 in 8-bit levels (not rounded)."""
    # cv2.transform, not ``@``: a matrix product this size wakes numpy's BLAS threads, which then
    # spin for a while on every core (measured: ~0.1 CPU-s per ``animate``).
    weights = np.array([[0.299, 0.587, 0.114]], dtype=np.float32)
    return np.asarray(cv2.transform(rgb.astype(np.float32), weights), dtype=np.float32)


def _block_mad(values: Float, level: Float, block: int) -> float:
    """25th percentile over ``block``-pixel tiles of ``median(|v - median v|) / 0.6745``."""
    height, width = values.shape
    rows, cols = height // block, width // block
    if rows == 0 or cols == 0:
        flat = values.ravel()
        # Medians are np.quantile(x, 0.5) here: np.median imports numpy.ma on first use (~20 ms).
        return float(np.quantile(np.abs(flat - np.quantile(flat, 0.5)), 0.5) / 0.6745)
    blocks = values[: rows * block, : cols * block].reshape(rows, block, cols, block)
    tiles = blocks.transpose(0, 2, 1, 3).reshape(rows * cols, block * block)
    levels = level[: rows * block, : cols * block].reshape(rows, block, cols, block)
    means = levels.transpose(0, 2, 1, 3).reshape(rows * cols, block * block).mean(axis=1)
    centre = np.quantile(tiles, 0.5, axis=1, keepdims=True)
    sigma = np.quantile(np.abs(tiles - centre), 0.5, axis=1) / 0.6745
    usable = (means > 12) & (means < 243)  # clipped tiles hide the noise
    if usable.sum() < max(4, 0.1 * len(sigma)):
        usable = np.ones_like(usable)
    return float(np.percentile(sigma[usable], 25))


def estimate_grain(grey: Float, block: int = 32) -> GrainEstimate:
    """Noise standard deviation (8-bit levels) of a grey image; ``grey`` shape (H, W) float32.

    Robust median-absolute-deviation estimates per ``block``-pixel tile, read at the 25th
    percentile over tiles (flat areas show the noise; texture raises only some tiles), skipping
    clipped tiles. ``sigma`` uses the residual from a Gaussian blur of 2 px (catches grain that
    clumps over a few pixels); ``fine`` the diagonal Haar detail ``(a - b - c + d) / 2`` of 2x2
    cells, the estimator of ``skimage.restoration.estimate_sigma`` (Donoho & Johnstone 1994);
    ``slope`` the 10th percentile over ``SLOPE_TILE``-pixel tiles of the ratio of that band two
    octaves down to the finest (white noise: 0.25; natural texture: >= 1); ``midtones`` the share
    of tiles whose mean lies in ``MIDTONES``.
    """
    residual = grey - np.asarray(cv2.GaussianBlur(grey, (0, 0), 2.0), dtype=np.float32)
    sigma = _block_mad(residual, grey, block)
    hh, mean = _haar(grey)
    fine = _block_mad(hh, mean, max(2, block // 2))
    # Both bands over the same whole tiles.
    whole = grey[
        : grey.shape[0] // SLOPE_TILE * SLOPE_TILE, : grey.shape[1] // SLOPE_TILE * SLOPE_TILE
    ]
    fine_hh, fine_mean = _haar(whole)
    coarse_hh, _ = _haar(_haar(fine_mean)[1])
    ratios = _tile_mad(coarse_hh, SLOPE_TILE // 8) / np.maximum(
        _tile_mad(fine_hh, SLOPE_TILE // 2), 0.3
    )
    slope = float(np.percentile(ratios, 10)) if ratios.size else 0.0
    height, width = grey.shape
    rows, cols = height // block, width // block
    midtones = 1.0
    if rows and cols:
        tiles = grey[: rows * block, : cols * block].reshape(rows, block, cols, block).mean((1, 3))
        midtones = float(((tiles >= MIDTONES[0]) & (tiles <= MIDTONES[1])).mean())
    return GrainEstimate(sigma=sigma, fine=fine, slope=slope, midtones=midtones)


def _tile_mad(values: Float, block: int) -> Float:
    """``median(|v - median v|) / 0.6745`` of each ``block``-pixel tile, row by row."""
    rows, cols = values.shape[0] // block, values.shape[1] // block
    tiles = values[: rows * block, : cols * block].reshape(rows, block, cols, block)
    flat = tiles.transpose(0, 2, 1, 3).reshape(rows * cols, block * block)
    spread = np.quantile(np.abs(flat - np.quantile(flat, 0.5, axis=1, keepdims=True)), 0.5, axis=1)
    return np.asarray(spread / 0.6745, dtype=np.float32)


def _haar(grey: Float) -> tuple[Float, Float]:
    """The diagonal Haar detail ``(a - b - c + d) / 2`` of 2x2 cells and their means."""
    height, width = grey.shape
    g = grey[: height // 2 * 2, : width // 2 * 2]
    hh = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2.0
    mean = (g[0::2, 0::2] + g[0::2, 1::2] + g[1::2, 0::2] + g[1::2, 1::2]) / 4.0
    return np.asarray(hh, dtype=np.float32), np.asarray(mean, dtype=np.float32)


def _ellipse(radius: int) -> NDArray[np.uint8]:
    size = 2 * radius + 1
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)), dtype=np.uint8)


def _line_kernels(length: int, count: int) -> list[NDArray[np.uint8]]:
    """Line segments of ``length`` pixels at ``count`` orientations (uint8 kernels)."""
    kernels: list[NDArray[np.uint8]] = []
    half = (length - 1) / 2.0
    for k in range(count):
        angle = math.pi * k / count
        kernel = np.zeros((length, length), dtype=np.uint8)
        dx, dy = math.cos(angle) * half, math.sin(angle) * half
        start = (round(half - dx), round(half - dy))
        end = (round(half + dx), round(half + dy))
        cv2.line(kernel, start, end, 1, 1)
        kernels.append(kernel)
    return kernels


def _ridges(grey: Float, radius: int) -> tuple[Float, Float]:
    """(bright, dark) thin-structure responses: white top-hat and black-hat with an ellipse."""
    kernel = _ellipse(radius)
    bright = cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, kernel)
    dark = cv2.morphologyEx(grey, cv2.MORPH_BLACKHAT, kernel)
    return np.asarray(bright, dtype=np.float32), np.asarray(dark, dtype=np.float32)


def _contrast(grey: Float) -> float:
    """The picture's own tonal range (5th to 95th percentile), at least 32 levels."""
    step_y, step_x = max(1, grey.shape[0] // 256), max(1, grey.shape[1] // 256)
    low, high = np.percentile(grey[::step_y, ::step_x], [5, 95])
    return max(32.0, float(high - low))


def _find_lines(
    grey: Float, noise: float, scale: float, masks: _Masks, *, wide: bool = False
) -> None:
    """Scratches (or, with ``wide``, creases) of a grey image into ``masks``.

    ``noise`` is the grain in levels. Works on the raw picture: the oriented openings take the
    minimum along a segment, which grain does not survive, while 1-px scratches do (a median or
    NLM would erase them). Scratches are ridges up to ~4 px wide (at ``REFERENCE_SIDE``) and at
    least ``MIN_LINE_FRACTION`` of the long side; creases up to ~10 px wide and at least
    ``CREASE_FRACTION`` of the picture's extent. Lines at least ``EVIDENCE_FRACTION`` long that
    cross mostly quiet areas are counted in ``masks.evidence`` (what ``auto`` relies on).
    """
    height, width = grey.shape
    unit = max(1.0, scale)
    radius = max(2, round((CREASE_WIDTH if wide else LINE_WIDTH) * min(unit, 3.0)))
    if wide:
        # A crease is several pixels wide: a light blur keeps it and quiets the grain.
        blur = 0.3 * radius
        grey = np.asarray(cv2.GaussianBlur(grey, (0, 0), blur), dtype=np.float32)
        noise /= 2.0 * math.sqrt(math.pi) * blur
    strong = max(2.5 * noise, LINE_CONTRAST * _contrast(grey), 14.0)
    weak = 0.5 * strong
    min_length = (CREASE_FRACTION if wide else MIN_LINE_FRACTION) * max(height, width)
    busy_size = 2 * round(BUSY_RADIUS * radius / LINE_WIDTH) + 1  # ~10 line widths
    segment = max(LINE_SEGMENT, round(LINE_SEGMENT * unit)) | 1
    kernels = _line_kernels(segment, ORIENTATIONS)
    closers = _line_kernels(2 * segment + 1, ORIENTATIONS)
    low, high = _extremes(grey)
    for bright, response in zip((True, False), _ridges(grey, radius), strict=True):
        if not (response > strong).any():
            continue  # nothing stands out: the cheap exit for clean photos
        openings = [
            np.asarray(cv2.morphologyEx(response, cv2.MORPH_OPEN, k), dtype=np.float32)
            for k in kernels
        ]
        along = np.max(np.stack(openings), axis=0)
        if not (along > strong).any():
            continue
        # Texture guard: many line pieces close together (hair, fabric, foliage, text, the
        # rings of a helmet) are content; a scratch crosses quiet areas for part of its length.
        density = cv2.blur((along > weak).astype(np.float32), (busy_size, busy_size))
        quiet = density < BUSY_DENSITY
        # Each orientation (with its two neighbours, for gentle curves) is searched on its own,
        # so a scratch is not merged with the content it crosses; a closing along the same
        # direction joins the pieces of a broken scratch or a cracked crease.
        for k in range(ORIENTATIONS):
            group = np.maximum(
                np.maximum(openings[k - 1], openings[k]), openings[(k + 1) % ORIENTATIONS]
            )
            if not (group > strong).any():
                continue
            pieces = (group > weak).astype(np.uint8)
            if np.count_nonzero(pieces) < min_length:
                continue  # too few pixels for a line that long
            joined = cv2.morphologyEx(pieces, cv2.MORPH_CLOSE, closers[k])
            count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
            lengths = np.hypot(stats[:, 2], stats[:, 3]).astype(np.float64)
            long_enough = lengths >= min_length
            long_enough[0] = False
            if not long_enough.any():
                continue
            peaked = np.zeros(count, dtype=bool)
            peaked[labels[group > strong]] = True
            for label in np.flatnonzero(long_enough & peaked):
                x, y, w, h, area = (int(v) for v in stats[label])
                length = float(lengths[label])
                if area / length > 2.5 * radius:  # not thin: a blob or a region
                    continue
                if wide and not _spans(x, y, w, h, width, height):
                    continue  # a fold runs across the whole print
                region = (slice(y, y + h), slice(x, x + w))
                mine = labels[region] == label
                share = float(quiet[region][mine].mean())
                if share < (QUIET_SHARE_CREASE if wide else QUIET_SHARE):
                    continue
                component = mine & (pieces[region] > 0)
                # Damage shows the paper (white) or dirt (black), beyond the faded image's
                # tones; a mid-tone ridge is a thing in the picture (a seam, a cord, a rod).
                # (A crease is told by running across the whole print instead.)
                core = grey[region][component & (group[region] > strong)]
                level = float(np.quantile(core, 0.5)) if core.size else high
                if not wide and not _beyond(level, bright, low, high, noise):
                    continue
                seen = masks.lines[region]
                already = bool((seen & component).sum() > 0.5 * component.sum())
                # The mask covers the whole measured width (the ridge response is narrower than
                # the anti-aliased line): grown by half its mean width, area / length.
                grow = round(LINE_GROW * area / length)
                if grow > 0:
                    component = cv2.dilate(component.astype(np.uint8), _ellipse(grow)).astype(bool)
                seen |= component
                if already:
                    continue  # the same line, found again in a neighbouring orientation
                if wide:
                    masks.crease += 1
                else:
                    masks.scratches += 1
                if wide or (length >= EVIDENCE_FRACTION * max(height, width) and share >= 0.8):
                    masks.evidence += 1


def _extremes(grey: Float) -> tuple[float, float]:
    """The darkest and brightest tones of the picture itself (2nd and 98th percentiles)."""
    step_y, step_x = max(1, grey.shape[0] // 256), max(1, grey.shape[1] // 256)
    low, high = np.percentile(grey[::step_y, ::step_x], [2, 98])
    return float(low), float(high)


def _beyond(level: float, bright: bool, low: float, high: float, noise: float) -> bool:
    """Whether a ridge's ``level`` lies at the bright (or dark) end of the picture's tones."""
    margin = EXTREME_MARGIN * (high - low) + noise
    return level >= high - margin if bright else level <= low + margin


def _spans(x: int, y: int, w: int, h: int, width: int, height: int) -> bool:
    """Whether a box runs from one side of the picture (within ``CREASE_MARGIN``) across at least
    ``CREASE_SPAN`` of it: a fold starts at an edge, and may break where it crosses busy content."""
    margin_x, margin_y = CREASE_MARGIN * width, CREASE_MARGIN * height
    at_side_x = x <= margin_x or x + w >= width - margin_x
    at_side_y = y <= margin_y or y + h >= height - margin_y
    return (at_side_x and w >= CREASE_SPAN * width) or (at_side_y and h >= CREASE_SPAN * height)


def _find_specks(grey: Float, noise: float, scale: float, masks: _Masks, *, strict: bool) -> None:
    """Dust specks of a grey image (already free of grain) into ``masks``.

    A speck fits in ``DUST_MAX_SIDE`` pixels, stands out by ``DUST_CONTRAST`` of the tonal
    range (and 4x the noise), and is alone: its neighbourhood holds few other ridge pixels
    (``strict``: few even of the weak ones, as ``auto`` counts; else few strong ones).
    """
    unit = max(1.0, scale)
    radius = max(2, round(DUST_RADIUS * min(unit, 2.0)))
    strong = max(4.0 * noise, DUST_CONTRAST * _contrast(grey), 20.0)
    weak = 0.5 * strong
    # Restoring (not ``strict``), the neighbourhood is smaller: dust comes in clusters, and a
    # speck next to another speck is still dust.
    busy_size = 2 * round(BUSY_RADIUS * unit * (1.0 if strict else SPECK_NEAR)) + 1
    side_max = DUST_MAX_SIDE * unit
    for response in _ridges(grey, radius):
        above = response > strong
        if not above.any():
            continue
        candidates = (response > weak).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
        if count <= 1:
            continue
        crowd = candidates if strict else above.astype(np.uint8)
        density = cv2.boxFilter(
            crowd.astype(np.float32), -1, (busy_size, busy_size), normalize=False
        )
        peaked = np.zeros(count, dtype=bool)
        peaked[labels[above]] = True
        for label in np.flatnonzero(peaked[1:]) + 1:
            x, y, w, h, area = (int(v) for v in stats[label])
            if w > side_max or h > side_max:
                continue
            window = (slice(y, y + h), slice(x, x + w))
            mine = labels[window] == label
            # Alone: the neighbourhood holds few ridge pixels but the speck's own.
            if float(density[window][mine].max()) > SPECK_NEIGHBOURS * area + 4:
                continue
            masks.specks[window] |= mine
            masks.dust += 1


def analyse(rgb: Image) -> DamageReport:
    """The ``auto`` check alone: grain level and counts of scratches, dust specks and creases.

    ``rgb``: (H, W, 3) uint8. Cheap: grain is measured on at most ``GRAIN_SAMPLE`` pixels of
    native resolution; if the photo is not grainy, lines and specks are looked for on a copy
    whose long side is ``ANALYSIS_SIDE``. Raises ``ValueError`` for a wrong shape or dtype.
    """
    _check(rgb)
    grain = _sample_grain(rgb)
    if grain.grainy:
        # The decision is made; ``restore`` counts the damage on the full picture.
        return _report(grain, _Masks.empty((1, 1)))
    small = _shrink(rgb, ANALYSIS_SIDE)
    scale = max(small.shape[:2]) / REFERENCE_SIDE
    grey = luma(small)
    masks = _Masks.empty(grey.shape)
    _find_specks(grey, grain.sigma, scale, masks, strict=True)
    if grain.noise >= LINES_GRAIN or masks.dust >= DUST_MIN_COUNT:
        # Lines decide only together with grain or dust (see ``needs_restoring``): look for
        # them only then, which keeps the check cheap on clean photos.
        _find_lines(grey, grain.sigma, scale, masks, wide=True)
        _find_lines(grey, grain.sigma, scale, masks)
    return _report(grain, masks)


def _report(grain: GrainEstimate, masks: _Masks, work_scale: float = 1.0) -> DamageReport:
    return DamageReport(
        grain=grain.sigma,
        grainy=grain.grainy,
        scratches=masks.scratches,
        dust=masks.dust,
        crease=masks.crease,
        damaged_fraction=float((masks.lines | masks.specks).mean()),
        evidence=masks.evidence,
        noise=grain.noise,
        work_scale=work_scale,
    )


def _sample_grain(rgb: Image) -> GrainEstimate:
    """Grain of the photo from its central ``GRAIN_SAMPLE``-pixel square at native resolution."""
    height, width = rgb.shape[:2]
    side = GRAIN_SAMPLE
    y0, x0 = max(0, (height - side) // 2), max(0, (width - side) // 2)
    crop = rgb[y0 : y0 + side, x0 : x0 + side]
    found = estimate_grain(luma(crop))
    return replace(found, vivid=colour_variety(crop) > VIVID_VARIETY)


def colour_variety(rgb: Image) -> float:
    """How many different colours a photo has: the 75th percentile distance (8-bit levels) of
    its (Cr, Cb) chroma from the median chroma. ~0-11 for grey, sepia and faded prints (one
    tone), 10-40 for colour photos."""
    ycc = cv2.cvtColor(np.ascontiguousarray(rgb[::4, ::4]), cv2.COLOR_RGB2YCrCb)
    chroma = ycc.reshape(-1, 3)[:, 1:].astype(np.float32)
    spread = chroma - np.quantile(chroma, 0.5, axis=0)
    return float(np.percentile(np.hypot(spread[:, 0], spread[:, 1]), 75))


def _shrink(rgb: Image, side: int) -> Image:
    height, width = rgb.shape[:2]
    factor = side / max(height, width)
    if factor >= 1.0:
        return rgb
    return shrink(rgb, (max(1, round(width * factor)), max(1, round(height * factor))))


def _full_masks(work: Image, grain: GrainEstimate) -> tuple[_Masks, Image]:
    """Every line and speck of the (working-size) photo, and the photo denoised if grainy."""
    grey = luma(work)
    scale = max(work.shape[:2]) / REFERENCE_SIDE
    masks = _Masks.empty(grey.shape)
    _find_lines(grey, grain.sigma, scale, masks)
    _find_lines(grey, grain.sigma, scale, masks, wide=True)
    out = work
    if grain.sigma >= 1.0 and (grain.grainy or grain.fine >= GRAIN_FINE_SHARE * grain.sigma):
        out = _denoise(work, grain.sigma)
    # Specks are looked for after denoising: non-local means leaves them be (no similar
    # patches), while the grain that would pass for specks is gone.
    _find_specks(luma(out), SPECK_NOISE * grain.sigma, scale, masks, strict=False)
    return masks, out


def _check(rgb: Image) -> Image:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"restore needs an (H, W, 3) uint8 RGB array, got {rgb.shape} {rgb.dtype}")
    return rgb


def _work_copy(rgb: Image) -> tuple[Image, float]:
    height, width = rgb.shape[:2]
    if height * width <= MAX_WORK_PIXELS:
        return rgb, 1.0
    factor = math.sqrt(MAX_WORK_PIXELS / (height * width))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8), factor


# ------------------------------------------------------------------------------------------------
# Restoration


def restore(
    rgb: Image,
    mode: RestoreMode = "auto",
    *,
    protect_faces: bool = True,
    faces: Sequence[FaceBox] | None = None,
    model: FaceModel | None = None,
) -> RestoreResult:
    """Restore an old scan; ``rgb`` is (H, W, 3) uint8, the result has the same shape.

    ``mode``: "auto" restores only when ``analyse`` finds damage (else the input array itself
    is returned, untouched), "on" always applies what is found (denoising follows the measured
    grain, so a clean photo changes little), "off" returns the input. ``protect_faces`` keeps
    the eyes of faces out of the inpainting and checks likeness (module docstring); ``faces``
    (in ``rgb``'s pixels) are used instead of detecting them, and ``model`` is the face model
    to use (a new ``generation.faces.FaceModel`` when None). Raises ``ValueError`` for a wrong
    array shape or dtype, or an unknown mode.
    """
    if mode not in RESTORE_MODES:
        raise ValueError(f"restore mode must be one of {', '.join(RESTORE_MODES)}, got {mode!r}")
    report = analyse(rgb)
    if mode == "off" or (mode == "auto" and not report.needs_restoring):
        return RestoreResult(image=rgb, restored=False, report=report)
    return _restore(rgb, report, protect_faces, faces, model)


def restore_working(
    source: Image,
    work: Image,
    mode: RestoreMode = "auto",
    *,
    face: FaceBox | None = None,
    model: FaceModel | None = None,
    report: DamageReport | None = None,
) -> RestoreResult:
    """``restore`` of ``work``, a resized or cropped copy of ``source``, decided on ``source``.

    The ``auto`` check reads the grain at ``source``'s native resolution (``analyse``); the
    cleaning then runs on ``work`` (H, W, 3 uint8, e.g. the 512-px frame ``animate`` renders),
    so a big scan costs about as much as a small one. ``face`` (in ``work``'s pixels) is the
    face to protect and check, if any; faces are not searched again. ``report`` is
    ``analyse(source)`` when the caller already has it (the CLI runs it beside face detection).
    """
    if mode not in RESTORE_MODES:
        raise ValueError(f"restore mode must be one of {', '.join(RESTORE_MODES)}, got {mode!r}")
    _check(work)
    if report is None:
        report = analyse(source)
    if mode == "off" or (mode == "auto" and not report.needs_restoring):
        return RestoreResult(image=work, restored=False, report=report)
    return _restore(work, analyse(work), True, [face] if face is not None else [], model)


def _restore(
    rgb: Image,
    report: DamageReport,
    protect_faces: bool,
    faces: Sequence[FaceBox] | None,
    model: FaceModel | None,
) -> RestoreResult:
    work, factor = _work_copy(rgb)
    grain = _sample_grain(work)
    masks, out = _full_masks(work, grain)
    report = replace(_report(grain, masks, factor), grainy=report.grainy)
    notes: list[str] = []
    scale = max(work.shape[:2]) / REFERENCE_SIDE
    mask = masks.lines | masks.specks
    found: list[FaceBox] = []
    if protect_faces:
        model = model or _face_model()
        if faces is None:
            # Faces of the scan itself (denoising can soften a face below the detector's
            # score), else of the denoised copy.
            found = _faces(model, work) or _faces(model, out)
        else:
            found = [box.scaled(factor, factor, 0.0, 0.0) for box in faces]
    if found:
        mask &= ~_eye_guard(mask.shape, found)
    denoised = out
    out = _inpaint(denoised, mask, scale) if mask.any() else denoised
    likeness = None
    if found and model is not None:
        from generation.quality import IDENTITY_THRESHOLD

        # The same person? Face-recognition embeddings of the scan and of the result
        # (``generation.quality.Likeness``): grain, dust and a crease gone leave the person.
        face = found[0]
        likeness = _likeness(model, work, out, face)
        if likeness < IDENTITY_THRESHOLD and mask.any():
            mask &= ~_box(mask.shape, face)  # first: no inpainting on the face
            out = _inpaint(denoised, mask, scale) if mask.any() else denoised
            likeness = _likeness(model, work, out, face)
            notes.append("damage on the face was not painted over, to keep the likeness")
    if factor != 1.0:
        size = (rgb.shape[1], rgb.shape[0])
        out = np.asarray(cv2.resize(out, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
        notes.append(f"restored at {factor:.2f}x size and scaled back")
    return RestoreResult(
        image=out, restored=True, report=report, likeness=likeness, notes=tuple(notes)
    )


def _denoise(rgb: Image, sigma: float) -> Image:
    """Non-local means at a strength from the measured grain (``NLM_STRENGTH`` x the luma noise;
    the colour planes 1.5x that, so sepia and fading stay as they are), with ``GRAIN_KEPT`` of
    the removed grain put back. Photos above ``NLM_FULL_PIXELS`` use 5-px patches and an 11-px
    search window instead of 7 and 21: about 6x fewer patch comparisons."""
    h = float(np.clip(NLM_STRENGTH * sigma, 1.0, 30.0))
    patch, search = (7, 21) if rgb.shape[0] * rgb.shape[1] <= NLM_FULL_PIXELS else (5, 11)
    out = np.asarray(cv2.fastNlMeansDenoisingColored(rgb, None, h, 1.5 * h, patch, search))
    if GRAIN_KEPT <= 0.0:
        return np.asarray(out, dtype=np.uint8)
    # A trace of the original grain keeps the film's look (fully smooth reads as plastic).
    kept = out.astype(np.float32) + GRAIN_KEPT * (rgb.astype(np.float32) - out)
    return np.clip(kept + 0.5, 0, 255).astype(np.uint8)


LINE_GROW = 0.0  # line masks grow by this share of their measured mean width
NLM_STRENGTH = 1.2  # NLM ``h`` per level of measured grain
NLM_FULL_PIXELS = 1_000_000
GRAIN_KEPT = 0.15  # share of the grain left in (the film's look)


def _inpaint(rgb: Image, mask: NDArray[np.bool_], scale: float) -> Image:
    """Telea inpainting of ``mask`` (dilated by a pixel or two for anti-aliased edges)."""
    grow = max(1, round(min(scale, 2.0)))
    dilated = cv2.dilate(mask.astype(np.uint8) * 255, _ellipse(grow))
    radius = max(3, round(3 * min(scale, 2.0)))
    return np.asarray(cv2.inpaint(rgb, dilated, radius, cv2.INPAINT_TELEA), dtype=np.uint8)


def _face_model() -> FaceModel:
    from generation.faces import FaceModel

    return FaceModel()


def _faces(model: FaceModel, rgb: Image) -> list[FaceBox]:
    """Faces (with landmarks) of the picture, largest first, at most four."""
    return sorted(model.find_faces(rgb), key=lambda f: -f.w * f.h)[:4]


def _eye_guard(shape: tuple[int, ...], faces: Sequence[FaceBox]) -> NDArray[np.bool_]:
    """Pixels around each face's eyes (estimated from the box when no eye was found)."""
    from generation.faces import geometry

    guard = np.zeros(shape[:2], dtype=np.uint8)
    for face in faces:
        geo = geometry(face)
        radius = max(3, round(0.3 * geo.eye_distance))
        for x, y in geo.points()[:2]:
            cv2.circle(guard, (round(float(x)), round(float(y))), radius, 1, -1)
    return guard.astype(bool)


def _likeness(model: FaceModel, before: Image, after: Image, face: FaceBox) -> float:
    """``generation.quality.Likeness`` of ``after`` against ``before`` on ``face`` (1.0 = the
    same person; the embedding cosine and eye spacing, as for animated takes)."""
    from generation.quality import Likeness

    return Likeness(model, before, face).frame_identity(after)


def _box(shape: tuple[int, ...], face: FaceBox) -> NDArray[np.bool_]:
    """The face box (with a margin of a tenth of its size) as a mask."""
    mask = np.zeros(shape[:2], dtype=np.uint8)
    pad_x, pad_y = face.w // 10, face.h // 10
    top_left = (face.x - pad_x, face.y - pad_y)
    bottom_right = (face.x + face.w + pad_x, face.y + face.h + pad_y)
    cv2.rectangle(mask, top_left, bottom_right, 1, -1)
    return mask.astype(bool)


def restore_sanitized(
    image: SanitizedImage, mode: RestoreMode = "auto"
) -> tuple[SanitizedImage, RestoreResult]:
    """``restore`` for an intake image: the (possibly new) ``SanitizedImage`` and the result.

    The returned image keeps the source facts (format, original size) and warnings; it is the
    very same object when nothing was changed.
    """
    result = restore(image.rgb, mode)
    if not result.restored:
        return image, result
    return dataclasses.replace(image, rgb=result.image), result
