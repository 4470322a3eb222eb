"""The CPU ``warp`` backend: face-aware procedural motion without weights or torch.

Every motion primitive is a smooth displacement field over the picture (``cv2.remap`` samples the
photo at ``p + d(p)``) whose strength follows a periodic function of the loop phase, so the
last frame equals the first exactly. The loop phase runs through an eased clock that slows down
near the loop point, so the repeated frame at the seam never reads as a hitch.

- blink: in each eye, the upper-lid skin is stretched down over the opening until the lash line
  meets the lower lid, held for a moment, then released (the eyeball itself never moves);
- head tilt / turn / nod: a feathered head mask rotates / shifts with a yaw-like profile /
  bobs about the neck, against a still background;
- breathing: the torso (and the head riding on it) rises and the chest widens slightly;
- hair and fabric sway: travelling waves confined to the hair ring and the lower torso edges;
- smile: the mouth corners are lifted and drawn outwards (never when the mouth must stay closed);
- zoom, pan and parallax: whole-frame moves with a small overscan so no border shows.

With no face, only whole-picture motions are possible (breathing-like scale, zoom, parallax).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.backend import (
    CancelToken,
    DrawnFrame,
    FaceBox,
    ProgressFn,
    RenderRequest,
    SubjectKind,
    Take,
)
from generation.faces import FaceGeometry, geometry
from generation.mesh import (
    EYE_A_LOWER,
    EYE_A_UPPER,
    EYE_B_LOWER,
    EYE_B_UPPER,
    FACE_OVAL,
    LIPS_INNER_LOWER,
    LIPS_INNER_UPPER,
    LIPS_OUTER,
    mesh_points,
)
from generation.motion import Constraint, MotionSpec, Primitive
from livingphoto.errors import GenerationFailed

logger = logging.getLogger(__name__)

F32 = NDArray[np.float32]

# How much of the clock's speed is taken away at the loop point (1.0 = a full stop).
EASE = 0.75
# Blink phases in seconds: closing, fully closed, opening.
BLINK_CLOSE_S, BLINK_HOLD_S, BLINK_OPEN_S = 0.09, 0.05, 0.16
# The displacement fields are smooth: build and combine them on a grid this many times smaller.
FIELD_STEP = 2


@dataclass(frozen=True)
class Component:
    """One motion component: a displacement field (dx, dy at field resolution) and its curve."""

    name: str
    dx: F32
    dy: F32
    curve: NDArray[np.float64]  # strength per frame


@dataclass(frozen=True)
class EyeBlink:
    centre: tuple[float, float]
    half_width: float
    half_height: float
    above: float  # how much lid skin above the opening gets stretched down
    angle: float = 0.0  # tilt of the eye line in radians (the lids follow it)
    # The real lid contours from the face mesh: offsets across the eye line (pixels, down
    # positive) of the open upper and lower lid at ``LID_SAMPLES`` (fractions of half_width
    # along it); empty: average lid arcs.
    upper: tuple[float, ...] = ()
    lower: tuple[float, ...] = ()


LID_SAMPLES = np.linspace(-1.0, 1.0, 17)
# The stretched lid skin starts this many half-openings above the mesh's upper lid contour (so no
# lash or iris pixel is stretched into the closed lid).
LASH_MARGIN = 0.6
# "keep mouth closed" still allows a closed-lip smile this strong ("just a soft smile").
CLOSED_LIP_SMILE = 0.3


@dataclass(frozen=True)
class Plan:
    """Everything one variation needs to render its frames."""

    components: list[Component]
    eyes: list[EyeBlink]
    closure: NDArray[np.float64]  # blink closure 0..1 per frame
    notes: dict[str, object] = field(default_factory=dict)
    # Each component's (dx, dy) interleaved, shape (fh, fw, 2): one OpenCV call per frame step.
    fields: list[F32] = field(default_factory=list)


class WarpBackend:
    """Procedural warp animation (numpy + OpenCV). Nothing to load; ``setup`` is a no-op."""

    name = "warp"

    def setup(self) -> None:
        """Nothing to load: the face was already located by the caller."""

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
    ) -> list[Take]:
        return [e.done for e in self.draw_frames(request, progress, cancel) if e.done is not None]

    def draw_frames(
        self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
    ) -> Iterator[DrawnFrame]:
        """The takes of ``render``, frame by frame (take 1 first): the caller can encode each
        frame as soon as it is drawn."""
        image = np.ascontiguousarray(request.image, dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise GenerationFailed("the warp backend needs an RGB image")
        if request.frames < 2:
            raise GenerationFailed("a loop needs at least 2 frames")
        height, width = image.shape[:2]
        grid = _Grid(width, height)
        total = request.variations * request.frames
        maps = np.empty_like(grid.identity)
        for k in range(request.variations):
            seed = request.seed + k
            # The stdlib generator: a plan takes a dozen scalar draws, and numpy.random costs
            # ~10 ms of start-up to import (seeded Mersenne Twister: the same takes everywhere).
            rng = random.Random(seed)
            plan = plan_variation(
                request.spec,
                request.face,
                grid,
                request.frames,
                request.fps,
                rng,
                kind=request.kind,
                focus=request.focus,
            )
            frames = np.empty((request.frames, height, width, 3), dtype=np.uint8)
            fields = full_fields(plan, grid)
            last = request.frames - 1
            for t in range(last):
                cancel.check()
                render_frame(image, grid, plan, t, frames[t], fields, maps)
                if t % 8 == 0:
                    progress((k * request.frames + t) / total, "warp")
                yield DrawnFrame(k, t, frames, seed)
            frames[last] = frames[0]  # the loop closes exactly
            info: dict[str, object] = {
                "blink_peak": int(np.argmax(plan.closure)) if plan.closure.max() > 0 else None,
                **plan.notes,
            }
            logger.debug("warp variation %d (seed %d): %s", k + 1, seed, plan.notes)
            progress((k + 1) * request.frames / total, "warp")
            yield DrawnFrame(k, last, frames, seed, Take(frames=frames, seed=seed, info=info))


class _Grid:
    """Pixel coordinate grids at full and field resolution (built once per render)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.fw = (width + FIELD_STEP - 1) // FIELD_STEP
        self.fh = (height + FIELD_STEP - 1) // FIELD_STEP
        ys, xs = np.mgrid[0 : self.fh, 0 : self.fw].astype(np.float32)
        # Field sample (i, j) sits at full-resolution pixel (j * step, i * step).
        self.x: F32 = xs * FIELD_STEP
        self.y: F32 = ys * FIELD_STEP
        full_y, full_x = np.mgrid[0:height, 0:width].astype(np.float32)
        # (H, W, 2): the identity map, as cv2.remap takes it in one two-channel array.
        self.identity: F32 = np.ascontiguousarray(np.dstack([full_x, full_y]))
        self._regions: dict[FaceBox, _Regions] = {}

    def regions(self, face: FaceBox) -> _Regions:
        """``_regions(self, face)``, computed once per face (every take of a render shares it)."""
        found = self._regions.get(face)
        if found is None:
            found = self._regions[face] = _regions(self, face)
        return found


# --------------------------------------------------------------------------------------------
# Curves: periodic in the loop phase, neutral (0) on the first frame.


def loop_phase(frames: int) -> NDArray[np.float64]:
    """Eased phase 0..2π for each frame; the last frame has phase 2π (== the first)."""
    tau = np.arange(frames, dtype=np.float64) / max(1, frames - 1)
    eased = tau - EASE * np.sin(2 * np.pi * tau) / (2 * np.pi)
    return 2 * np.pi * eased


def wave_curve(
    phase: NDArray[np.float64], rng: random.Random, cycles: int = 1
) -> NDArray[np.float64]:
    """A random smooth periodic curve starting at 0 with peak |value| 1."""
    a = rng.uniform(0.3, 1.0)
    b = rng.uniform(-1.0, 1.0)
    c = rng.uniform(-0.3, 0.3)
    p = phase * cycles
    curve = a * (1 - np.cos(p)) + b * np.sin(p) + c * np.sin(2 * p)
    peak = float(np.max(np.abs(curve))) or 1.0
    result: NDArray[np.float64] = curve / peak
    return result


def breath_curve(phase: NDArray[np.float64], cycles: int, offset: float) -> NDArray[np.float64]:
    """Breathing: a slightly asymmetric rise and fall, 0 on the first frame, 0..1."""
    p = phase * cycles
    rise = (1 - np.cos(p)) / 2
    result: NDArray[np.float64] = np.clip(rise + offset * np.sin(p) * rise, 0.0, None)
    peak = float(result.max()) or 1.0
    return result / peak


def blink_curve(frames: int, fps: int, centre: float) -> NDArray[np.float64]:
    """Closure 0..1 per frame for one blink centred at ``centre`` (fraction of the loop)."""
    t = np.arange(frames, dtype=np.float64) / fps
    duration = (frames - 1) / fps
    start = centre * duration - (BLINK_CLOSE_S + BLINK_HOLD_S / 2)
    close_end = start + BLINK_CLOSE_S
    open_start = close_end + BLINK_HOLD_S
    open_end = open_start + BLINK_OPEN_S
    closure = np.zeros(frames, dtype=np.float64)
    closing = (t >= start) & (t < close_end)
    closure[closing] = _smooth((t[closing] - start) / BLINK_CLOSE_S)
    closure[(t >= close_end) & (t <= open_start)] = 1.0
    opening = (t > open_start) & (t < open_end)
    closure[opening] = 1.0 - _smooth((t[opening] - open_start) / BLINK_OPEN_S)
    # Make sure the fully-closed pose is actually shown at low frame rates.
    if closure.max() < 1.0:
        closure[int(np.argmax(closure))] = 1.0
    closure[0] = closure[-1] = 0.0
    return closure


def _smooth(x: NDArray[np.float64]) -> NDArray[np.float64]:
    c = np.clip(x, 0.0, 1.0)
    result: NDArray[np.float64] = c * c * (3 - 2 * c)
    return result


# --------------------------------------------------------------------------------------------
# Masks (field resolution, float32 0..1).


def _ellipse_mask(grid: _Grid, cx: float, cy: float, rx: float, ry: float, feather: float) -> F32:
    """1 inside the ellipse, smoothly 0 beyond ``feather`` (fraction of the radius) outside it."""
    r = np.sqrt(((grid.x - cx) / rx) ** 2 + ((grid.y - cy) / ry) ** 2)
    t = np.clip((r - 1.0) / feather, 0.0, 1.0)
    mask: F32 = (1.0 - t * t * (3 - 2 * t)).astype(np.float32)
    return mask


def _smoothstep_field(v: F32, lo: float, hi: float) -> F32:
    t = np.clip((v - lo) / (hi - lo), 0.0, 1.0)
    out: F32 = (t * t * (3 - 2 * t)).astype(np.float32)
    return out


def _oval_head(grid: _Grid, face: FaceBox) -> F32 | None:
    """The head mask from the face mesh's oval: the oval widened for the ears and the hair's
    sides, raised past the hairline for the hair on top, feathered; None without a mesh."""
    oval = mesh_points(face, FACE_OVAL)
    if oval is None:
        return None
    centre = oval.mean(axis=0)
    rel = oval - centre
    height = float(np.ptp(oval[:, 1])) or 1.0
    grown = centre + rel * np.array([1.3, 1.15], dtype=np.float32)
    # Above the brows (the upper half of the oval) the hair starts: lift it by a hairline margin.
    upper = rel[:, 1] < 0
    grown[upper, 1] -= 0.35 * height * (-rel[upper, 1] / max(1e-3, float(-rel[:, 1].min())))
    mask = np.zeros((grid.fh, grid.fw), dtype=np.float32)
    cv2.fillPoly(mask, [np.round(grown / FIELD_STEP).astype(np.int32)], 1.0)
    sigma = max(1.0, 0.18 * height / FIELD_STEP)
    blurred: F32 = np.asarray(cv2.GaussianBlur(mask, (0, 0), sigma), dtype=np.float32)
    # The blur halves the edge: keep the inside solid, feather outwards.
    out: F32 = np.clip(2.0 * blurred, 0.0, 1.0).astype(np.float32)
    return out


@dataclass(frozen=True)
class _Regions:
    head: F32  # the head incl. hair, moved by tilt/turn/nod
    body: F32  # head + torso, moved by breathing and parallax
    hair: F32  # ring around the face where hair is
    fabric: F32  # lower torso
    head_centre: tuple[float, float]
    pivot: tuple[float, float]  # neck point heads rotate about
    face_w: float
    face_h: float


def _regions(grid: _Grid, face: FaceBox) -> _Regions:
    cx = face.x + face.w / 2
    cy = face.y + face.h / 2
    head_cy = cy - 0.08 * face.h
    head = _ellipse_mask(grid, cx, head_cy, 0.78 * face.w, 0.98 * face.h, 0.45)
    # The neck fades out instead of tearing: extend the head mask downwards a little, softly.
    neck = _ellipse_mask(grid, cx, face.y + 1.05 * face.h, 0.35 * face.w, 0.35 * face.h, 0.8)
    oval = _oval_head(grid, face)
    if oval is not None:
        head = oval
    head = np.maximum(head, neck * 0.6).astype(np.float32)
    shoulders_y = face.y + 1.45 * face.h
    torso_half = 1.7 * face.w
    # Torso: a trapezoid widening from the neck to the shoulders, down to the bottom.
    half_width = np.clip(
        0.45 * face.w
        + (grid.y - (face.y + face.h)) / (0.6 * face.h) * (torso_half - 0.45 * face.w),
        0.45 * face.w,
        torso_half,
    )
    inside = 1.0 - _smoothstep_field(
        np.abs(grid.x - cx).astype(np.float32) - half_width, 0.0, 0.35 * face.w
    )
    below_chin = _smoothstep_field(grid.y, face.y + 0.8 * face.h, face.y + 1.1 * face.h)
    torso = (inside * below_chin).astype(np.float32)
    body = np.maximum(torso, _ellipse_mask(grid, cx, head_cy, 0.8 * face.w, 1.0 * face.h, 0.4))
    face_core = _ellipse_mask(grid, cx, cy + 0.05 * face.h, 0.46 * face.w, 0.6 * face.h, 0.25)
    hair_zone = _ellipse_mask(grid, cx, head_cy - 0.05 * face.h, 0.85 * face.w, 1.1 * face.h, 0.35)
    hair = np.clip(hair_zone - face_core, 0.0, 1.0).astype(np.float32)
    fabric = (torso * _smoothstep_field(grid.y, shoulders_y, shoulders_y + 1.2 * face.h)).astype(
        np.float32
    )
    return _Regions(
        head=head,
        body=body.astype(np.float32),
        hair=hair,
        fabric=fabric,
        head_centre=(cx, head_cy),
        pivot=(cx, face.y + 1.15 * face.h),
        face_w=float(face.w),
        face_h=float(face.h),
    )


# --------------------------------------------------------------------------------------------
# Planning one variation.


def _effective_intensity(spec: MotionSpec, primitive: Primitive) -> float:
    level = spec.intensity(primitive)
    if primitive in spec.excluded:
        return 0.0
    if (primitive is Primitive.BLINK and Constraint.NO_BLINK in spec.constraints) or (
        Constraint.STILL_HEAD in spec.constraints
        and primitive in {Primitive.HEAD_TILT, Primitive.HEAD_TURN, Primitive.NOD}
    ):
        return 0.0
    if Constraint.KEEP_IDENTITY in spec.constraints and primitive in {
        Primitive.HEAD_TURN,
        Primitive.NOD,
        Primitive.HEAD_TILT,
        Primitive.SMILE,
    }:
        level = min(level, 0.4)
    if primitive is Primitive.SMILE and (Constraint.MOUTH_CLOSED in spec.constraints):
        level = min(level, CLOSED_LIP_SMILE)  # lips stay sealed: see _rigid_lips
    if primitive is Primitive.SMILE and Constraint.NO_BIG_SMILE in spec.constraints:
        level = min(level, 0.3)
    if primitive in {Primitive.ZOOM, Primitive.PAN, Primitive.PARALLAX} and (
        Constraint.STILL_CAMERA in spec.constraints
        or Constraint.STILL_BACKGROUND in spec.constraints
    ):
        return 0.0
    return level


def _sign(direction: str | None, positive: str, rng: random.Random) -> float:
    if direction is None:
        return 1.0 if rng.random() < 0.5 else -1.0
    return 1.0 if direction == positive else -1.0


def plan_variation(
    spec: MotionSpec,
    face: FaceBox | None,
    grid: _Grid,
    frames: int,
    fps: int,
    rng: random.Random,
    *,
    kind: SubjectKind = "face",
    focus: tuple[float, float] | None = None,
) -> Plan:
    """Choose this variation's fields, curves and blink from the motion spec and the seed.

    ``kind == "animal"``: pet motion (breathing and a small head bob, never a blink or a smile).
    A face seen in profile (``face.frontal`` False) gets no blink and no smile either.
    Without a face, whole-picture motion is centred on ``focus`` (default: the picture's centre).
    """
    phase = loop_phase(frames)
    seconds = (frames - 1) / fps
    jitter = rng.uniform(0.8, 1.2)
    components: list[Component] = []
    eyes: list[EyeBlink] = []
    closure: NDArray[np.float64] = np.zeros(frames, dtype=np.float64)
    notes: dict[str, object] = {}
    size = float(min(grid.width, grid.height))
    overscan = 0.0  # fraction of the frame the global moves may reveal

    animal = kind == "animal"
    features = face is not None and face.frontal and not animal

    def level(primitive: Primitive) -> float:
        value = _effective_intensity(spec, primitive) * jitter
        if primitive in (Primitive.BLINK, Primitive.SMILE) and not features:
            return 0.0
        if animal and primitive is Primitive.BREATHING:
            return max(value, 0.5 * jitter)  # pets always breathe
        if animal and primitive is Primitive.NOD:
            return max(value, 0.3 * jitter)  # and bob their heads a little
        return value

    # A face whose eyes and mouth cannot be moved (seen in profile, or found only by the second
    # detector) when the prompt asks for nothing else: it breathes gently rather than stand still.
    features_only = {Primitive.BLINK, Primitive.SMILE}
    breathe_instead = (
        face is not None
        and not animal
        and not features
        and Primitive.BREATHING not in spec.excluded
        and any(_effective_intensity(spec, p) > 0 for p in features_only)
        and not any(level(p) > 0 for p in Primitive if p not in features_only)
    )

    if face is not None:
        reg = grid.regions(face)
        px, py = reg.pivot
        fw = reg.face_w
        # Head tilt: rotation about the neck, small-angle field.
        tilt = level(Primitive.HEAD_TILT)
        if tilt > 0:
            angle = 0.10 * tilt * _sign(spec_direction(spec, Primitive.HEAD_TILT), "right", rng)
            dx = ((grid.y - py) * reg.head).astype(np.float32)
            dy = (-(grid.x - px) * reg.head).astype(np.float32)
            components.append(Component("head_tilt", dx, dy, angle * wave_curve(phase, rng)))
        # Head turn: a yaw-like shift, strongest in the middle of the head.
        turn = level(Primitive.HEAD_TURN)
        if turn > 0:
            shift = 0.09 * fw * turn * _sign(spec_direction(spec, Primitive.HEAD_TURN), "left", rng)
            hx, _ = reg.head_centre
            profile = np.cos(np.clip((grid.x - hx) / (0.9 * fw), -1.0, 1.0) * (np.pi / 2))
            dx = (reg.head * profile).astype(np.float32)
            components.append(
                Component("head_turn", dx, np.zeros_like(dx), shift * wave_curve(phase, rng))
            )
        # Nod: the head bobs about the neck, the chin moving most.
        nod = level(Primitive.NOD)
        if nod > 0:
            amount = 0.07 * reg.face_h * nod * _sign(spec_direction(spec, Primitive.NOD), "up", rng)
            hy = reg.head_centre[1]
            dy = (reg.head * (1.0 + 0.35 * (grid.y - hy) / reg.face_h)).astype(np.float32)
            components.append(
                Component("nod", np.zeros_like(dy), dy, amount * wave_curve(phase, rng))
            )
        # Breathing: the body rises (sample from below), the chest widens a touch.
        breath = level(Primitive.BREATHING)
        if breathe_instead:
            breath = max(breath, 0.5 * jitter)
            notes["instead"] = "breathing"
        if breath > 0:
            rise = 0.028 * fw * breath * 2.0
            lift = _smoothstep_field(grid.y, float(grid.height), face.y + 1.5 * face.h)
            dy = (reg.body * lift).astype(np.float32)
            dx = (-(grid.x - px) / (4.0 * fw) * reg.body * lift * (1.0 - reg.head)).astype(
                np.float32
            )
            cycles = max(1, round(seconds / 3.2))
            curve = rise * breath_curve(phase, cycles, rng.uniform(-0.3, 0.3))
            components.append(Component("breathing", dx, dy, curve))
        hair = level(Primitive.HAIR_SWAY)
        if hair > 0:
            amount = 0.035 * fw * hair
            wavelength = rng.uniform(0.6, 1.1) * reg.face_h
            for j, offset in enumerate((0.0, np.pi / 2)):
                spatial = np.sin(2 * np.pi * grid.y / wavelength + offset)
                dx = (reg.hair * spatial).astype(np.float32)
                dy = (0.3 * reg.hair * np.cos(2 * np.pi * grid.x / wavelength + offset)).astype(
                    np.float32
                )
                curve = amount * (np.sin(phase + j * np.pi / 2) - np.sin(j * np.pi / 2))
                components.append(Component(f"hair_sway_{j}", dx, dy, curve / 2))
        fabric = level(Primitive.FABRIC_SWAY)
        if fabric > 0:
            amount = 0.03 * fw * fabric
            wavelength = rng.uniform(0.8, 1.4) * reg.face_h
            for j, offset in enumerate((0.0, np.pi / 2)):
                spatial = np.sin(2 * np.pi * grid.y / wavelength + offset)
                dx = (reg.fabric * spatial).astype(np.float32)
                curve = amount * (np.sin(phase + j * np.pi / 2) - np.sin(j * np.pi / 2))
                components.append(Component(f"fabric_sway_{j}", dx, np.zeros_like(dx), curve / 2))
        smile = level(Primitive.SMILE)
        geo = geometry(face)
        if smile > 0:
            eye_dist = geo.eye_distance
            radius = 0.28 * eye_dist
            dx_total = np.zeros((grid.fh, grid.fw), dtype=np.float32)
            dy_total = np.zeros((grid.fh, grid.fw), dtype=np.float32)
            mouth_cx = (geo.mouth_left[0] + geo.mouth_right[0]) / 2
            for corner in (geo.mouth_left, geo.mouth_right):
                blob = np.exp(
                    -(((grid.x - corner[0]) ** 2 + (grid.y - corner[1]) ** 2) / (2 * radius**2))
                ).astype(np.float32)
                outward = 1.0 if corner[0] > mouth_cx else -1.0
                # Sample from inward and below: the corner content moves out and up.
                dx_total -= outward * 0.6 * blob
                dy_total += blob
            amount = 0.09 * eye_dist * smile
            curve = amount * (1 - np.cos(phase)) / 2
            components.append(Component("smile", dx_total, dy_total, curve))
        blink = level(Primitive.BLINK)
        if blink > 0:
            eyes.extend(_eye_lids(face, geo))
            position = rng.uniform(0.3, 0.7)
            closure = blink_curve(frames, fps, position)
            if seconds >= 4.5 or blink >= 0.75:
                second = position + (0.35 if position < 0.5 else -0.35)
                second = min(0.85, max(0.15, second))
                closure = np.maximum(closure, blink_curve(frames, fps, second)).astype(np.float64)
            notes["blink_at_s"] = round(position * seconds, 3)
        anchor = reg.head_centre
        subject = reg.body
    else:
        anchor = focus if focus is not None else (grid.width / 2, grid.height * 0.55)
        subject = _ellipse_mask(
            grid, anchor[0], anchor[1], 0.35 * grid.width, 0.4 * grid.height, 1.2
        )
        breath = max(
            level(Primitive.BREATHING),
            0.5 * max(level(Primitive.HAIR_SWAY), level(Primitive.FABRIC_SWAY)),
        )
        if breath > 0:
            # A breathing-like swell of the middle of the picture, anchored at the bottom.
            amount = 0.03 * size * breath
            dx = (-(grid.x - anchor[0]) / size * subject).astype(np.float32)
            dy = (-(grid.y - grid.height) / size * subject).astype(np.float32)
            cycles = max(1, round(seconds / 3.2))
            curve = amount * breath_curve(phase, cycles, rng.uniform(-0.3, 0.3))
            components.append(Component("swell", dx, dy, curve))
        notes["fallback"] = "whole-image motion (no face found)"

    # Camera moves (work with or without a face).
    zoom = level(Primitive.ZOOM)
    if face is None and not spec.constraints & {
        Constraint.STILL_CAMERA,
        Constraint.STILL_BACKGROUND,
    }:
        # Without a face the picture itself must carry the life: a slow, gentle push in.
        zoom = max(zoom, 0.25 * jitter)
    if zoom > 0:
        sign = 1.0 if spec_direction(spec, Primitive.ZOOM) != "out" else -1.0
        amount = 0.07 * zoom
        cx, cy = anchor
        dx = (-(grid.x - cx)).astype(np.float32)
        dy = (-(grid.y - cy)).astype(np.float32)
        # "in": content grows, i.e. sample nearer the anchor.
        curve = sign * amount * (1 - np.cos(phase)) / 2
        if sign < 0:
            overscan = max(overscan, amount)
        components.append(Component("zoom", dx, dy, curve))
    pan = level(Primitive.PAN)
    if pan > 0:
        amount = 0.035 * size * pan
        direction = spec_direction(spec, Primitive.PAN)
        vertical = direction in {"up", "down"}
        sign = -1.0 if direction in {"left", "up"} else 1.0
        ones = np.ones((grid.fh, grid.fw), dtype=np.float32)
        zeros = np.zeros_like(ones)
        curve = sign * amount * wave_curve(phase, rng)
        components.append(
            Component("pan", zeros if vertical else ones, ones if vertical else zeros, curve)
        )
        overscan = max(overscan, amount / size)
    parallax = level(Primitive.PARALLAX)
    if parallax > 0:
        amount = 0.025 * size * parallax
        direction = spec_direction(spec, Primitive.PARALLAX)
        vertical = direction in {"up", "down"}
        sign = -1.0 if direction in {"left", "up"} else _sign(None, "", rng)
        # Foreground and background shift in opposite directions.
        weight = (subject - 0.6 * (1.0 - subject)).astype(np.float32)
        zeros = np.zeros_like(weight)
        curve = sign * amount * wave_curve(phase, rng)
        components.append(
            Component(
                "parallax", zeros if vertical else weight, weight if vertical else zeros, curve
            )
        )
        overscan = max(overscan, 0.6 * amount / size)
    if overscan > 0:
        # A constant zoom-in so global moves never reveal the border.
        scale = 2.2 * overscan
        cx, cy = grid.width / 2, grid.height / 2
        dx = (-(grid.x - cx) * scale).astype(np.float32)
        dy = (-(grid.y - cy) * scale).astype(np.float32)
        components.append(Component("overscan", dx, dy, np.ones(frames, dtype=np.float64)))
    if features and face is not None and Constraint.MOUTH_CLOSED in spec.constraints:
        components = _rigid_lips(components, grid, face)
        notes["protected"] = "lips"
    notes["components"] = sorted(
        {c.name.rsplit("_", 1)[0] if c.name[-1].isdigit() else c.name for c in components}
    )
    fields = [np.ascontiguousarray(np.dstack([c.dx, c.dy]), dtype=np.float32) for c in components]
    return Plan(components=components, eyes=eyes, closure=closure, notes=notes, fields=fields)


def _rigid_lips(components: list[Component], grid: _Grid, face: FaceBox) -> list[Component]:
    """ "keep mouth closed": inside the lips' region every field moves as one piece (the value at
    the mouth's centre), so no motion can stretch the lips apart; it blends back outside. The
    lips' region is the mesh's outer lip contour (grown a little) when the face has a mesh,
    else an ellipse between the mouth corners.

    The smile is the exception (a closed-lip smile): inside the lips it takes, in each column,
    its value on the line where the lips meet, so the upper and the lower lip move together
    (the corners rise, the lip line curves, the mouth never opens)."""
    geo = geometry(face)
    mx = (geo.mouth_left[0] + geo.mouth_right[0]) / 2
    my = (geo.mouth_left[1] + geo.mouth_right[1]) / 2
    half = max(2.0, math.hypot(geo.mouth_right[0] - mx, geo.mouth_right[1] - my))
    lips = _lip_mask(grid, face)
    if lips is None:
        lips = _ellipse_mask(grid, mx, my, 1.35 * half, 0.75 * half, 0.8)
    i = min(grid.fh - 1, max(0, round(my / FIELD_STEP)))
    j = min(grid.fw - 1, max(0, round(mx / FIELD_STEP)))
    line_rows = _lip_line_rows(grid, face, geo)
    columns = np.arange(grid.fw)
    rigid = []
    for c in components:
        if c.name == "smile":
            on_line_dx = c.dx[line_rows, columns][None, :]
            on_line_dy = c.dy[line_rows, columns][None, :]
            dx = (c.dx * (1.0 - lips) + on_line_dx * lips).astype(np.float32)
            dy = (c.dy * (1.0 - lips) + on_line_dy * lips).astype(np.float32)
        else:
            dx = (c.dx * (1.0 - lips) + float(c.dx[i, j]) * lips).astype(np.float32)
            dy = (c.dy * (1.0 - lips) + float(c.dy[i, j]) * lips).astype(np.float32)
        rigid.append(Component(c.name, dx, dy, c.curve))
    return rigid


def _lip_mask(grid: _Grid, face: FaceBox) -> F32 | None:
    """1 over the mesh's outer lip contour grown by a margin, feathered; None without a mesh."""
    outer = mesh_points(face, LIPS_OUTER)
    if outer is None:
        return None
    centre = outer.mean(axis=0)
    width = float(np.ptp(outer[:, 0])) or 1.0
    grown = centre + (outer - centre) * np.array([1.15, 1.35], dtype=np.float32)
    mask = np.zeros((grid.fh, grid.fw), dtype=np.float32)
    cv2.fillPoly(mask, [np.round(grown / FIELD_STEP).astype(np.int32)], 1.0)
    sigma = max(1.0, 0.12 * width / FIELD_STEP)
    blurred: F32 = np.asarray(cv2.GaussianBlur(mask, (0, 0), sigma), dtype=np.float32)
    out: F32 = np.clip(2.0 * blurred, 0.0, 1.0).astype(np.float32)
    return out


def _lip_line_rows(grid: _Grid, face: FaceBox, geo: FaceGeometry) -> NDArray[np.intp]:
    """For each field column, the field row of the line where the lips meet: the mesh's inner
    lip contour (mean of upper and lower) when present, else the line between the corners,
    extended flat beyond the corners."""
    upper = mesh_points(face, LIPS_INNER_UPPER)
    lower = mesh_points(face, LIPS_INNER_LOWER)
    if upper is not None and lower is not None:
        line = (upper + lower) / 2
    else:
        line = np.array([geo.mouth_left, geo.mouth_right], dtype=np.float32)
    line = line[np.argsort(line[:, 0])]
    ys = np.interp(grid.x[0], line[:, 0], line[:, 1])
    rows: NDArray[np.intp] = np.clip(np.round(ys / FIELD_STEP), 0, grid.fh - 1).astype(np.intp)
    return rows


def _eye_lids(face: FaceBox, geo: FaceGeometry) -> list[EyeBlink]:
    """The two eye openings to blink: from the landmarks' eye corners when the face has them
    (each eye's own width, centre and slant), else from the eye centres and average proportions.
    """
    eyes = _mesh_lids(face)
    if eyes:
        return eyes
    if len(face.landmarks) >= 4:
        corners = sorted(face.landmarks[:4], key=lambda p: p[0])
        for outer, inner in ((corners[0], corners[1]), (corners[2], corners[3])):
            width = max(2.0, math.hypot(inner[0] - outer[0], inner[1] - outer[1]))
            angle = math.atan2(inner[1] - outer[1], inner[0] - outer[0])
            cx, cy = (outer[0] + inner[0]) / 2, (outer[1] + inner[1]) / 2
            eyes.append(
                EyeBlink(
                    # The iris sits a touch above the corner line: centre the lids on it.
                    centre=(
                        cx + 0.04 * width * math.sin(angle),
                        cy - 0.04 * width * math.cos(angle),
                    ),
                    half_width=0.62 * width,
                    half_height=0.21 * width,
                    above=0.34 * width,
                    angle=angle,
                )
            )
        return eyes
    eye_dist = geo.eye_distance
    angle = math.atan2(geo.right_eye[1] - geo.left_eye[1], geo.right_eye[0] - geo.left_eye[0])
    for centre in (geo.left_eye, geo.right_eye):
        eyes.append(
            EyeBlink(
                centre=(
                    centre[0] - 0.01 * eye_dist * math.sin(angle),
                    centre[1] + 0.01 * eye_dist * math.cos(angle),
                ),
                half_width=0.27 * eye_dist,
                half_height=0.085 * eye_dist,
                above=0.14 * eye_dist,
                angle=angle,
            )
        )
    return eyes


def _mesh_lids(face: FaceBox) -> list[EyeBlink]:
    """The two eye openings from the face mesh's eyelid contours (empty without a mesh): the
    eye line runs corner to corner, and the open lids are the real upper and lower contours."""
    eyes: list[EyeBlink] = []
    for upper_idx, lower_idx in ((EYE_A_UPPER, EYE_A_LOWER), (EYE_B_UPPER, EYE_B_LOWER)):
        upper = mesh_points(face, upper_idx)
        lower = mesh_points(face, lower_idx)
        if upper is None or lower is None:
            return []
        start, end = upper[0], upper[-1]
        width = max(2.0, float(np.hypot(*(end - start))))
        angle = math.atan2(float(end[1] - start[1]), float(end[0] - start[0]))
        if abs(angle) > math.pi / 2:  # the contour runs right to left: flip the eye line
            angle = math.atan2(float(start[1] - end[1]), float(start[0] - end[0]))
        centre = (start + end) / 2
        cos_a, sin_a = math.cos(angle), math.sin(angle)
        half = width / 2
        top = _lid_profile(upper, centre, cos_a, sin_a, half)
        bottom = _lid_profile(lower, centre, cos_a, sin_a, half)
        opening = max(1.0, max(b - t for t, b in zip(top, bottom, strict=True)))
        eyes.append(
            EyeBlink(
                centre=(float(centre[0]), float(centre[1])),
                half_width=half,
                half_height=opening / 2,
                above=0.34 * width,
                angle=angle,
                upper=top,
                lower=bottom,
            )
        )
    return sorted(eyes, key=lambda e: e.centre[0])


def _lid_profile(
    points: NDArray[np.float32],
    centre: NDArray[np.float32],
    cos_a: float,
    sin_a: float,
    half: float,
) -> tuple[float, ...]:
    """A lid contour as offsets across the eye line at ``LID_SAMPLES`` along it."""
    rel = points - centre
    s = (rel[:, 0] * cos_a + rel[:, 1] * sin_a) / half
    q = -rel[:, 0] * sin_a + rel[:, 1] * cos_a
    order = np.argsort(s)
    return tuple(float(v) for v in np.interp(LID_SAMPLES, s[order], q[order]))


def spec_direction(spec: MotionSpec, primitive: Primitive) -> str | None:
    for motion in spec.motions:
        if motion.primitive is primitive:
            return motion.direction
    return None


# --------------------------------------------------------------------------------------------
# Rendering one frame.


def full_fields(plan: Plan, grid: _Grid) -> list[F32]:
    """The plan's component fields at full resolution, (H, W, 2) each: upsampled once per take
    rather than once per frame (resizing is linear, so the frames are the same)."""
    size = (grid.width, grid.height)
    return [
        np.asarray(cv2.resize(f, size, interpolation=cv2.INTER_LINEAR), dtype=np.float32)
        for f in plan.fields
    ]


def render_frame(
    image: NDArray[np.uint8],
    grid: _Grid,
    plan: Plan,
    t: int,
    out: NDArray[np.uint8],
    fields: list[F32] | None = None,
    maps: F32 | None = None,
) -> None:
    """Warp ``image`` into ``out`` for frame ``t`` of ``plan``.

    ``fields`` are ``full_fields(plan, grid)`` (made here when not given) and ``maps`` an
    (H, W, 2) float32 scratch buffer for the sampling map (allocated when not given)."""
    if fields is None:
        fields = full_fields(plan, grid)
    if maps is None:
        maps = np.empty_like(grid.identity)
    active = [(float(c.curve[t]), f) for c, f in zip(plan.components, fields, strict=True)]
    active = [(amount, f) for amount, f in active if amount]
    if active:
        # The map is the identity plus each component's field times its curve at t.
        (amount, first), *rest = active
        cv2.scaleAdd(first, amount, grid.identity, dst=maps)
        for amount, vectors in rest:
            cv2.scaleAdd(vectors, amount, maps, dst=maps)
    else:
        np.copyto(maps, grid.identity)
    map_x, map_y = maps[:, :, 0], maps[:, :, 1]
    closure = float(plan.closure[t])
    shades = []
    if closure > 0.0:
        for eye in plan.eyes:
            shaded = _apply_blink(map_x, map_y, eye, closure)
            if shaded is not None:
                shades.append(shaded)
    cv2.remap(  # type: ignore[call-overload]  # map2=None: map1 holds (x, y)
        image,
        maps,
        None,
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT101,
        dst=out,
    )
    for x0, y0, shade in shades:
        region = out[y0 : y0 + shade.shape[0], x0 : x0 + shade.shape[1]]
        region[...] = np.clip(region * shade[:, :, None] + 0.5, 0, 255).astype(np.uint8)


def _apply_blink(
    map_x: F32, map_y: F32, eye: EyeBlink, closure: float
) -> tuple[int, int, F32] | None:
    """Pull the upper lid down over the eye opening by ``closure`` (0 open .. 1 shut), in place.

    Works in source coordinates: wherever the current map samples inside the eye region, the
    sample is moved up into the lid skin so the lid edge (lash line) lands ``closure`` of the way
    from the open upper lid to the lower lid. Returns (x0, y0, shade): a multiplicative shade for
    the output region at (x0, y0) that darkens the new lash line a little.
    """
    height, width = map_x.shape
    ex, ey = eye.centre
    a, b, up = eye.half_width, eye.half_height, eye.above
    # Find where the eye currently appears in the output (the map is near-identity plus a shift).
    iy, ix = min(height - 1, max(0, round(ey))), min(width - 1, max(0, round(ex)))
    shift_x = float(map_x[iy, ix]) - ix
    shift_y = float(map_y[iy, ix]) - iy
    pad = 3
    reach = max(1.4 * a, b + up)  # generous: the eye line may be tilted
    x0 = max(0, math.floor(ex - shift_x - reach) - pad)
    x1 = min(width, math.ceil(ex - shift_x + reach) + pad)
    y0 = max(0, math.floor(ey - shift_y - reach) - pad)
    y1 = min(height, math.ceil(ey - shift_y + reach) + pad)
    if x1 <= x0 or y1 <= y0:
        return None
    map_x_roi = map_x[y0:y1, x0:x1]
    map_y_roi = map_y[y0:y1, x0:x1]
    # Eye-aligned coordinates: s along the eye line, qy "down" across it (relative to ey).
    cos_a, sin_a = math.cos(eye.angle), math.sin(eye.angle)
    rel_x, rel_y = map_x_roi - ex, map_y_roi - ey
    s = rel_x * cos_a + rel_y * sin_a
    qy = ey + (-rel_x * sin_a + rel_y * cos_a)
    u = s / a
    # Lid travel is largest mid-eye and fades past the corners (the lid is an arc).
    arc = np.sqrt(np.clip(1.0 - u * u, 0.0, 1.0))
    fade = closure * (1.0 - _smooth_f32(np.clip((np.abs(u) - 1.0) / 0.4, 0.0, 1.0)))
    if eye.upper and eye.lower:  # the real lid contours (face mesh)
        # The mesh's upper contour runs along the lash line: the skin fold starts just above it.
        upper = ey + np.interp(u, LID_SAMPLES, eye.upper).astype(np.float32) - LASH_MARGIN * b
        lower = ey + np.interp(u, LID_SAMPLES, eye.lower).astype(np.float32)
    else:  # average lid arcs
        upper = ey - b * (0.55 + 0.45 * arc)  # open upper-lid edge
        lower = ey + b * (0.35 + 0.65 * arc)  # lower-lid edge
    lid = upper + fade * (lower + 0.15 * b - upper)  # where the lash line is now
    top = upper - up
    bottom = np.maximum(lower + 0.1 * b, ey + b) + 0.6 * up
    above = (qy >= top) & (qy <= lid)
    stretched = top + (qy - top) * (upper - top) / np.maximum(lid - top, 1e-3)
    # Below the lash line, sample a little lower so no eye white peeks out under the closed lid.
    below = (qy > lid) & (qy < bottom)
    pushed = qy + fade * 0.35 * b * (bottom - qy) / np.maximum(bottom - lid, 1e-3)
    near_lid = np.exp(-(((qy - lid) / (0.35 * b + 0.5)) ** 2))
    shade = (1.0 - 0.22 * fade * near_lid * np.sqrt(arc)).astype(np.float32)
    moved = np.where(above, stretched, np.where(below, pushed, qy)) - qy
    # Back to picture coordinates: the lid moves across the eye line.
    map_x_roi -= (moved * sin_a).astype(np.float32)
    map_y_roi += (moved * cos_a).astype(np.float32)
    return x0, y0, shade


def _smooth_f32(x: F32) -> F32:
    out: F32 = (x * x * (3 - 2 * x)).astype(np.float32)
    return out
