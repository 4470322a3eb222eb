"""Backend-agnostic quality scores for a take, and ranking of takes.

- ``identity``: 1.0 = the same face as the photo: the cosine similarity of face-recognition
  embeddings (dlib ResNet, 128-d) of sampled frames against the photo, less a penalty when the
  eye spacing drifts (``Likeness``). The worst sampled frame counts.
- ``loop_seam``: ``max(0, d(last, first) - max(step, noise)) / step`` on blurred small luma, with
  ``step`` the median consecutive step and ``noise`` a codec floor of 2 levels: 0 = the jump at
  the loop point is no larger than an ordinary frame step or the encoder's drift.
- ``flicker``: mean absolute temporal second difference of a blurred, small luma copy, in 8-bit
  levels: smooth motion is near 0, frame-to-frame brightness or noise changes are large.
- ``motion``: 95th percentile of optical-flow magnitude from frame 0, in percent of the frame width,
  averaged over sampled frames (0 = still).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.backend import FaceBox, Frames
from generation.embedding import CHIP_PX
from generation.faces import FaceModel, eye_spacing_ratio

IDENTITY_THRESHOLD = 0.8  # takes below this are flagged (calibration: docs/faces.md)
# 1 - cosine similarity of embeddings is multiplied by this (same person >= 0.97, another
# person <= 0.90 on dlib's embeddings), so a full swap lands well under the threshold.
SIMILARITY_GAIN = 3.5
# Eye-spacing drift allowed before it costs identity, and the cost per unit of drift beyond it.
SPACING_TOLERANCE = 0.05
SPACING_WEIGHT = 5.0
# An aligned face whose inner-face pixels (eyes left out) differ from the photo's by less than
# this (mean grey levels) is the same face by construction: its embedding is not computed.
# Measured on a clean portrait: the same person blinking, tilting, breathing 2-4, smiling 4-7;
# a 30 % blend toward another person 9. Grainy scans change more as they move (up to 15).
SAME_CHIP_LEVELS = 4.0
# A changed face that is only the photo's face moved is not embedded either: what is left after
# warping the photo's chip onto the frame's by dense optical flow (mean grey levels, eyes left
# out) stays under RESIDUAL_LEVELS and 95 % of the flow under MAX_FLOW_PX (chip pixels). Measured
# (docs/faces.md): the warp backend's blink, smile, tilt, nod, look on a clean and a grainy
# portrait leave 0.35-1.3 levels and 1-3.9 px (a big smile: embedded), a 30 % blend toward
# another person 7.2 levels; eyes pushed 10 % apart move the flow 3.5 px (embedded).
RESIDUAL_LEVELS = 3.0
MAX_FLOW_PX = 3.0
FLOW_BLUR = 1.0  # Gaussian sigma (chip pixels) before the flow: film grain is not motion
# A sampled frame under this is looked at again a moment later (see ``Likeness.identity``).
RECHECK_BELOW = 0.9
FACE_PX = 120  # likeness works on the face at this width (the embedding chip is 150 px)
SMALL_SIDE = 128  # luma copies for seam, flicker and motion
# Loop seam: blur (pixels of the small luma), the codec noise floor and the smallest typical step
# (8-bit levels, mean absolute difference): see ``_loop_seam``.
SEAM_BLUR = 1.0
SEAM_NOISE = 2.0
SEAM_STILL = 0.05


@dataclass(frozen=True)
class Scores:
    """The four quality scores of one take (see the module docstring for units)."""

    identity: float  # 1.0 = the same face as the photo
    loop_seam: float  # 0.0 = seamless; ~1.0 = a seam as large as a typical frame step
    flicker: float  # 0.0 = no flicker
    motion: float  # how much it actually moves (0.0 = still)

    def to_json(self) -> dict[str, float]:
        return {
            "identity": round(self.identity, 4),
            "loop_seam": round(self.loop_seam, 4),
            "flicker": round(self.flicker, 4),
            "motion": round(self.motion, 4),
        }


def _small_size(height: int, width: int, side: int = SMALL_SIDE) -> tuple[int, int]:
    """(width, height) of the small luma copy of a ``height`` x ``width`` frame."""
    scale = side / max(height, width)
    return max(8, round(width * scale)), max(8, round(height * scale))


def _luma_into(frame: NDArray[np.uint8], out: NDArray[np.float32]) -> None:
    """The small luma copy of one RGB ``frame`` into ``out`` (h, w) float32."""
    size = (out.shape[1], out.shape[0])
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    # Halve with pyrDown (Gaussian, ~6x cheaper than INTER_AREA) while still twice too big.
    while grey.shape[0] >= 2 * size[1] and grey.shape[1] >= 2 * size[0]:
        grey = cv2.pyrDown(grey)
    if grey.shape[:2] != (size[1], size[0]):
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    out[...] = grey


def _small_luma(frames: Frames, side: int = SMALL_SIDE) -> NDArray[np.float32]:
    _, height, width, _ = frames.shape
    size = _small_size(height, width, side)
    out = np.empty((frames.shape[0], size[1], size[0]), dtype=np.float32)
    for t, frame in enumerate(frames):
        _luma_into(frame, out[t])
    return out


def loop_seam(frames: Frames) -> float:
    """How much larger the jump from the last frame to the first is than a typical step."""
    return _loop_seam(_small_luma(frames)) if len(frames) >= 3 else 0.0


def _loop_seam(luma: NDArray[np.float32]) -> float:
    """The seam a viewer can see: how far the jump from the last frame to the first exceeds both
    an ordinary frame step and the codec's noise floor, in ordinary steps.

    On a blurred copy (``SEAM_BLUR`` px on the small luma), ``seam`` and each consecutive
    ``step`` are mean absolute differences in 8-bit levels. The score is
    ``max(0, seam - max(typical, SEAM_NOISE)) / max(typical, SEAM_STILL)`` with ``typical`` the
    median step: the old ``seam / typical - 1`` whenever the clip moves more than the noise
    floor, and 0 for a lossy encoder's drift (H.264 leaves the decoded last frame ~1.5 levels
    off the first even when the rendered frames were identical). So a clip scores the same
    raw or decoded.
    """
    blurred = np.stack([cv2.GaussianBlur(frame, (0, 0), SEAM_BLUR) for frame in luma])
    step = blurred[1:] - blurred[:-1]
    np.abs(step, out=step)
    steps = step.reshape(len(step), -1).mean(axis=1)
    # np.quantile(x, 0.5) is np.median(x) without its first-use import of numpy.ma (~20 ms).
    typical = float(np.quantile(steps, 0.5))
    seam = float(np.abs(blurred[-1] - blurred[0]).mean())
    return max(0.0, seam - max(typical, SEAM_NOISE)) / max(typical, SEAM_STILL)


def flicker(frames: Frames) -> float:
    """Mean absolute temporal second difference of blurred luma (8-bit levels)."""
    return _flicker(_small_luma(frames)) if len(frames) >= 3 else 0.0


def _flicker(luma: NDArray[np.float32]) -> float:
    height, width = luma.shape[1:]
    size = (max(8, width // 2), max(8, height // 2))
    small = np.stack(
        [
            cv2.GaussianBlur(cv2.resize(f, size, interpolation=cv2.INTER_AREA), (0, 0), 1.5)
            for f in luma
        ]
    )
    second = small[2:] - 2 * small[1:-1] + small[:-2]
    return float(np.abs(second).mean())


def motion_amount(frames: Frames, samples: int = 6) -> float:
    """How much the clip moves: mean of the 95th-percentile flow magnitude (percent of width)."""
    return _motion(_small_luma(frames), samples) if len(frames) >= 2 else 0.0


def _motion(luma: NDArray[np.float32], samples: int = 6) -> float:
    first = _grey8(luma[0])
    values = [_flow_p95(first, _grey8(luma[t])) for t in _motion_picks(len(luma), samples)]
    return 100.0 * float(np.mean(values)) / float(luma.shape[2])


def _motion_picks(count: int, samples: int = 6) -> list[int]:
    """The frames whose flow from frame 0 ``motion`` averages."""
    picks = np.unique(np.linspace(1, count - 1, num=min(samples, count - 1)).astype(int))
    return [int(t) for t in picks]


def _grey8(luma: NDArray[np.float32]) -> NDArray[np.uint8]:
    return np.clip(luma + 0.5, 0, 255).astype(np.uint8)


def _flow_p95(first: NDArray[np.uint8], other: NDArray[np.uint8]) -> float:
    """95th percentile of the optical-flow length from ``first`` to ``other`` (pixels); 0 for
    an identical frame (a loop's closing frame), whose flow is not computed."""
    if np.array_equal(first, other):
        return 0.0
    flow = np.asarray(
        cv2.calcOpticalFlowFarneback(first, other, None, 0.5, 3, 13, 3, 5, 1.1, 0),  # type: ignore[call-overload]
        dtype=np.float32,
    )
    return float(np.percentile(np.hypot(flow[..., 0], flow[..., 1]), 95))


class Likeness:
    """Identity of frames against the source photo: face-recognition embeddings plus eye spacing.

    Built once per photo from the still ``reference`` (H, W, 3 RGB, the picture the clip was made
    from, at the clip's size) and its face box. A frame's face is re-fitted on its 5 landmarks in
    the same box (the head moves only a little), aligned into a chip and scored as

        ``1 - SIMILARITY_GAIN * (1 - cos) - SPACING_WEIGHT * max(0, drift - SPACING_TOLERANCE)``

    where ``cos`` is the cosine similarity of dlib's 128-d ResNet embeddings with the reference
    and ``drift`` the relative change of the inner-to-outer eye-corner span ratio (eyes moving
    apart or together; a nod or a tilt leaves it alone). The embedding (about 75 ms on one CPU
    core, holding the GIL) is skipped when the chip's inner face, eyes left out (they blink),
    differs from the photo's by less than ``SAME_CHIP_LEVELS``: that face is the photo's face.
    The reference's own embedding is made on first need. Calibration: ``docs/faces.md``.
    """

    def __init__(
        self,
        model: FaceModel,
        reference: NDArray[np.uint8],
        face: FaceBox,
        samples: int = 3,
        *,
        frames_face: FaceBox | None = None,
        embeddings: int = 1,
    ) -> None:
        """``face`` is in ``reference``'s pixels; ``frames_face`` is where that face is in the
        clip's frames when they are framed differently (default: the same place). ``identity``
        looks at ``samples`` frames and embeds at most ``embeddings`` of them (plus re-checks)."""
        if samples < 1 or embeddings < 1:
            raise ValueError("samples and embeddings must be at least 1")
        self.model = model
        self.samples = samples
        self.embeddings = embeddings
        still, local = _face_crop(reference, face)
        fitted = model.landmarks(still, local)
        self._reference_chip = model.chip(still, fitted)
        self._reference_grey = _grey(self._reference_chip)
        self._reference_smooth = np.asarray(
            cv2.GaussianBlur(self._reference_grey, (0, 0), FLOW_BLUR), dtype=np.float32
        )
        self._reference: NDArray[np.float32] | None = None
        self._reference_lock = threading.Lock()  # takes may be scored on several threads
        self._frames_face = frames_face or face
        self.spacing = eye_spacing_ratio(fitted)

    @property
    def reference(self) -> NDArray[np.float32]:
        """The photo's 128-d embedding (unit length), computed once on first use."""
        with self._reference_lock:
            if self._reference is None:
                self._reference = self.model.embed(self._reference_chip)
            return self._reference

    def prepare(self) -> None:
        """Make the photo's embedding now (e.g. while the first take is drawn)."""
        _ = self.reference

    def _look(self, frame: NDArray[np.uint8]) -> _Look:
        """A frame's aligned face: its chip, how much it changed, and the eye-spacing penalty."""
        local, box = _face_crop(frame, self._frames_face)
        fitted = self.model.landmarks(local, box)
        chip = self.model.chip(local, fitted)
        grey = _grey(chip)
        change = float(np.abs(grey - self._reference_grey)[_CHIP_INNER].mean())
        distinct = False
        if change >= SAME_CHIP_LEVELS:
            residual, flow = _deformation(self._reference_smooth, grey)
            distinct = residual >= RESIDUAL_LEVELS or flow >= MAX_FLOW_PX
        penalty = 0.0
        spacing = eye_spacing_ratio(fitted)
        if spacing is not None and self.spacing:
            drift = abs(spacing / self.spacing - 1.0)
            penalty = SPACING_WEIGHT * max(0.0, drift - SPACING_TOLERANCE)
        return _Look(chip, change, distinct, penalty)

    def _value(self, look: _Look, embed: bool) -> float:
        value = 1.0 - look.penalty
        if embed and look.distinct:
            similarity = float(np.dot(self.model.embed(look.chip), self.reference))
            value -= SIMILARITY_GAIN * (1.0 - similarity)
        return float(min(1.0, max(0.0, value)))

    def frame_identity(self, frame: NDArray[np.uint8]) -> float:
        """Identity of one frame (H, W, 3 RGB, same size as the reference), clipped to 0..1."""
        return self._value(self._look(frame), embed=True)

    def identity(self, frames: Frames) -> float:
        """The lowest identity among ``samples`` frames: the middle frames of ``samples`` equal
        stretches of the clip after frame 0 (a change lasting ``1 / samples`` of the clip is
        looked at at least once).

        Every sampled frame gets the eye-spacing check; the ``embeddings`` frames whose face
        changed most (if beyond ``SAME_CHIP_LEVELS``) also get the embedding: a face that turns
        into someone else changes most where it is least like the photo. A frame scoring under
        ``RECHECK_BELOW`` is checked again ``1/12`` of the clip later (earlier at the end) and the
        better of the two counts: a blink lasts about 0.3 s and passes, a changed face stays
        changed."""
        if len(frames) < 2:
            return 1.0
        return self.identity_of(frames, {t: self._look(frames[t]) for t in self.picks(len(frames))})

    def picks(self, count: int) -> list[int]:
        """The frames ``identity`` looks at in a take of ``count`` frames (none under 2)."""
        if count < 2:
            return []
        stretch = (count - 1) / self.samples
        return sorted({min(count - 1, 1 + int((k + 0.5) * stretch)) for k in range(self.samples)})

    def look(self, frame: NDArray[np.uint8]) -> _Look:
        """What ``identity`` needs of one picked frame (see ``picks``), made as it is drawn."""
        return self._look(frame)

    def identity_of(self, frames: Frames, looks: dict[int, _Look]) -> float:
        """``identity`` from the ``looks`` of the picked frames (``frames`` is read again
        for the re-checks)."""
        count = len(frames)
        if count < 2:
            return 1.0
        picks = self.picks(count)
        distinct = [t for t in picks if looks[t].distinct]
        most_changed = sorted(distinct, key=lambda t: looks[t].change, reverse=True)
        embedded = set(most_changed[: self.embeddings])
        offset = max(1, round(count / 12))
        worst = 1.0
        for t in picks:
            value = self._value(looks[t], embed=t in embedded)
            if value < RECHECK_BELOW:
                other = t + offset if t + offset < count else max(1, t - offset)
                if other != t:
                    value = max(value, self.frame_identity(frames[other]))
            worst = min(worst, value)
        return worst


@dataclass(frozen=True)
class _Look:
    chip: NDArray[np.uint8]  # (CHIP_PX, CHIP_PX, 3) aligned face
    change: float  # mean |grey - photo's| over the inner face without the eyes, 8-bit levels
    distinct: bool  # changed beyond the photo's face moved: the embedding decides
    penalty: float  # eye-spacing penalty (0 = the photo's spacing)


_CHIP_Y, _CHIP_X = np.mgrid[0:CHIP_PX, 0:CHIP_PX].astype(np.float32)


def _deformation(reference: NDArray[np.float32], grey: NDArray[np.float32]) -> tuple[float, float]:
    """How far a chip's face is from the photo's face moved: ``(residual, flow)``.

    ``reference`` is the photo's chip in grey, blurred by ``FLOW_BLUR``; ``grey`` the frame's
    (both (CHIP_PX, CHIP_PX) float32, 8-bit levels). Dense optical flow (Farnebäck, OpenCV)
    from the frame's chip to the photo's warps the photo's chip onto the frame's; ``residual``
    is the mean absolute difference left (grey levels, inner face without the eyes) and
    ``flow`` the 95th percentile of the flow's length there (chip pixels)."""
    smooth = np.asarray(cv2.GaussianBlur(grey, (0, 0), FLOW_BLUR), dtype=np.float32)
    frame8 = np.clip(smooth + 0.5, 0, 255).astype(np.uint8)
    photo8 = np.clip(reference + 0.5, 0, 255).astype(np.uint8)
    raw = cv2.calcOpticalFlowFarneback(frame8, photo8, None, 0.5, 3, 15, 3, 5, 1.2, 0)  # type: ignore[call-overload]
    flow = np.asarray(raw, dtype=np.float32)
    maps = (_CHIP_X + flow[..., 0], _CHIP_Y + flow[..., 1])
    warped = np.asarray(cv2.remap(reference, *maps, cv2.INTER_LINEAR), dtype=np.float32)
    residual = float(np.abs(warped - smooth)[_CHIP_INNER].mean())
    length = np.hypot(flow[..., 0], flow[..., 1])[_CHIP_INNER]
    return residual, float(np.percentile(length, 95))


def _grey(chip: NDArray[np.uint8]) -> NDArray[np.float32]:
    grey: NDArray[np.float32] = np.asarray(chip, dtype=np.float32).mean(axis=2)
    return grey


def _chip_inner() -> NDArray[np.bool_]:
    """The inner face of an aligned chip (brows to chin) where identity lives, without the eyes
    (a blink changes them and nothing else). dlib aligns the eye centres of every chip to about
    (0.31, 0.31) and (0.67, 0.31) of its side (measured on the chips of the example portraits)."""
    ys, xs = np.mgrid[0:CHIP_PX, 0:CHIP_PX].astype(np.float32)
    centre = CHIP_PX / 2
    inside: NDArray[np.bool_] = ((xs - centre) / (0.3 * CHIP_PX)) ** 2 + (
        (ys - centre - 0.03 * CHIP_PX) / (0.37 * CHIP_PX)
    ) ** 2 < 1.0
    for eye_x in (0.31, 0.67):
        eye = ((xs - eye_x * CHIP_PX) / (0.133 * CHIP_PX)) ** 2 + (
            (ys - 0.30 * CHIP_PX) / (0.093 * CHIP_PX)
        ) ** 2 < 1.0
        inside &= ~eye
    inside.setflags(write=False)
    return inside


_CHIP_INNER = _chip_inner()


def _face_crop(image: NDArray[np.uint8], face: FaceBox) -> tuple[NDArray[np.uint8], FaceBox]:
    """A crop around ``face`` scaled so the face is ``FACE_PX`` wide, and the box in it: the
    cost does not grow with the picture, and small faces are enlarged for the landmark model."""
    height, width = image.shape[:2]
    margin = 0.7 * max(face.w, face.h)
    x0, y0 = max(0, int(face.x - margin)), max(0, int(face.y - margin))
    x1 = min(width, max(x0 + 1, int(face.x + face.w + margin)))
    y1 = min(height, max(y0 + 1, int(face.y + face.h + margin)))
    scale = FACE_PX / max(1, face.w)
    region = image[y0:y1, x0:x1]
    size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = np.asarray(cv2.resize(region, size, interpolation=interpolation), dtype=np.uint8)
    return crop, face.scaled(scale, scale, -x0 * scale, -y0 * scale)


def score(frames: Frames, likeness: Likeness | None) -> Scores:
    """All four scores of one take (T, H, W, 3) RGB uint8.

    ``likeness`` is None when the photo has no usable face: identity is then 1.0 (nothing to
    drift from)."""
    scorer = TakeScorer(frames, likeness)
    for t in range(len(frames)):
        scorer.add(t)
    return scorer.result()


class TakeScorer:
    """``score`` of one take, worked out frame by frame while the take is drawn, so that the
    scores are ready moments after its last frame: each frame's small luma copy (shared by the
    seam, flicker and motion scores), the flows of the frames ``motion`` samples and the looks
    of the frames ``Likeness`` samples are made as each frame arrives; ``result`` adds the rest
    (seam, flicker, the embeddings and re-checks). Not thread-safe: one thread feeds it.
    """

    def __init__(self, frames: Frames, likeness: Likeness | None, samples: int = 6) -> None:
        """``frames`` (T, H, W, 3) RGB uint8, filled in order; ``add(t)`` once frame ``t`` is."""
        count, height, width = frames.shape[:3]
        size = _small_size(height, width)
        self.frames = frames
        self.likeness = likeness
        self._luma = np.empty((count, size[1], size[0]), dtype=np.float32)
        self._next = 0
        self._first: NDArray[np.uint8] | None = None
        self._flow_picks = set(_motion_picks(count, samples)) if count >= 2 else set()
        self._flows: list[float] = []
        self._look_picks = set(likeness.picks(count)) if likeness is not None else set()
        self._looks: dict[int, _Look] = {}

    def add(self, t: int) -> None:
        """Take in frame ``t`` (the next one: frames come in order, each once)."""
        if t != self._next:
            raise ValueError(f"frame {t} came before frame {self._next}")
        self._next += 1
        _luma_into(self.frames[t], self._luma[t])
        if t == 0:
            self._first = _grey8(self._luma[0])
        elif t in self._flow_picks:
            assert self._first is not None
            self._flows.append(_flow_p95(self._first, _grey8(self._luma[t])))
        if t in self._look_picks:
            assert self.likeness is not None
            self._looks[t] = self.likeness.look(self.frames[t])

    def result(self) -> Scores:
        """The four scores, once every frame has been added."""
        count = len(self.frames)
        if self._next != count:
            raise ValueError(f"only {self._next} of {count} frames were added")
        few = count < 3
        return Scores(
            identity=(
                1.0
                if self.likeness is None
                else self.likeness.identity_of(self.frames, self._looks)
            ),
            loop_seam=0.0 if few else _loop_seam(self._luma),
            flicker=0.0 if few else _flicker(self._luma),
            motion=(
                0.0
                if count < 2
                else 100.0 * float(np.mean(self._flows)) / float(self._luma.shape[2])
            ),
        )


def combined(scores: Scores) -> float:
    """One number to rank takes by: identity first, then a clean loop, steadiness, real motion.

    A still take (motion < 0.2 % of the width) is penalised; beyond that more motion earns
    nothing, so the natural take beats the dramatic one.
    """
    still_penalty = 0.3 * max(0.0, 1.0 - scores.motion / 0.2)
    return (
        scores.identity
        - 0.3 * min(scores.loop_seam, 2.0)
        - 0.05 * min(scores.flicker, 6.0)
        - still_penalty
    )


@dataclass(frozen=True)
class Ranked:
    index: int  # position in the input sequence (0-based)
    rank: int  # 1 = best
    combined: float
    flagged: bool


def rank(all_scores: Sequence[Scores], threshold: float = IDENTITY_THRESHOLD) -> list[Ranked]:
    """Rank takes by ``combined`` (ties keep generation order); flag identity below ``threshold``."""
    values = [combined(s) for s in all_scores]
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    ranks = {index: position + 1 for position, index in enumerate(order)}
    return [
        Ranked(
            index=i,
            rank=ranks[i],
            combined=values[i],
            flagged=all_scores[i].identity < threshold,
        )
        for i in range(len(values))
    ]
