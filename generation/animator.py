"""The one path from photo bytes to ranked looping clips, used by the CLI, the service and workers.

CONTRACT (relied on by the service, workers and benchmarks):

    animator = Animator(backend)          # backend from generation.backends.make_backend(...)
    animator.setup()                      # once per process
    result = animator.animate(image_bytes, prompt, options, out_dir, progress, cancel)

``animate`` runs: intake (moderation.intake) -> subject detection / crop / resize -> motion
parse (scaled by ``options.motion_scale``) -> ``backend.render`` -> loop export (ffmpeg) ->
quality scores -> ranking, and writes into ``out_dir``: one clip per variation
(``variation-{k}.{format}``), ``contact-sheet.png`` and ``summary.json`` (``AnimateResult.to_json``).
It raises ``UsageError`` for unusable input, ``GenerationFailed``, or ``Cancelled``.
Moderation (consent, policy) is NOT done here: callers do it before (CLI, service).
The implementation is the foundation work (issue 2).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.backend import (
    Backend,
    CancelToken,
    DrawnFrame,
    FaceBox,
    Frames,
    FrameStreamingBackend,
    ProgressFn,
    RenderRequest,
    StreamingBackend,
    Take,
    no_progress,
)
from generation.faces import DETECT_LONG_SIDE, FaceModel
from generation.preprocess import Framed
from generation.quality import Likeness, Scores
from generation.restore import DamageReport, RestoreMode, restore_working
from generation.subject import (
    SECOND_DETECTOR_WARNING,
    Subject,
    SubjectKind,
    choose,
    find_subject,
    salient_centre,
)
from livingphoto.atomic import write_atomically
from livingphoto.errors import GenerationFailed, LivingPhotoError, UsageError

if TYPE_CHECKING:
    from generation.contact_sheet import SheetRow
from moderation.intake import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    SanitizedImage,
    load_image,
)

ClipFormat = Literal["mp4", "gif", "webp"]
CropMode = Literal["auto", "none"]


@dataclass(frozen=True)
class AnimateOptions:
    variations: int = 3
    seconds: float = 3.0
    fps: int = 24
    size: int = 512  # long side in pixels
    seed: int | None = None  # None: random; variation k uses seed + k - 1
    crop: CropMode = "auto"
    format: ClipFormat = "mp4"
    # 1.0 as parsed; <1 "less motion", >1 "more motion".
    motion_scale: float = 1.0
    # Old-scan restoration pre-pass (generation.restore): "auto" only when damage is found.
    restore: RestoreMode = "auto"
    # Which detected face to animate (0-based, left to right); None: the largest.
    face: int | None = None


@dataclass(frozen=True)
class VariationResult:
    index: int  # 1-based, in generation order
    path: Path
    seed: int
    rank: int  # 1 = best
    scores: Scores
    combined: float
    flagged: bool  # identity drifted past the threshold
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": str(self.path),
            "seed": self.seed,
            "rank": self.rank,
            "scores": self.scores.to_json(),
            "combined": round(self.combined, 4),
            "flagged": self.flagged,
            **({"info": self.info} if self.info else {}),
        }


@dataclass(frozen=True)
class FinishedTake:
    """One take as soon as it is encoded and scored (``Animator.animate``'s ``on_take``);
    its rank and flag are known only once every take is in."""

    index: int  # 1-based, in generation order
    path: Path
    seed: int
    scores: Scores


# on_take(take): called from a worker thread, in take order, once per take.
TakeFn = Callable[[FinishedTake], None]


@dataclass(frozen=True)
class AnimateResult:
    variations: tuple[VariationResult, ...]
    motion: dict[str, Any]
    warnings: tuple[str, ...]
    contact_sheet: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # {"restored": bool, "restoration": {...}} from generation.restore (empty: not asked)
    restoration: dict[str, Any] = field(default_factory=dict)
    # {"kind": ..., "faces": [[x, y, w, h], ...], "chosen": k} in source photo pixels.
    subject: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "variations": [v.to_json() for v in self.variations],
            "motion": self.motion,
            "warnings": list(self.warnings),
            "restored": bool(self.restoration.get("restored", False)),
            **({"restoration": self.restoration["restoration"]} if self.restoration else {}),
            "subject": self.subject,
            **({"contact_sheet": str(self.contact_sheet)} if self.contact_sheet else {}),
        }


# ------------------------------------------------------------------------------------------------
# Implementation

logger = logging.getLogger(__name__)

MAX_VARIATIONS = 8
# With on_take, take k (0-based) is encoded this much * k nicer: take 1 reaches users first.
TAKE_NICENESS_STEP = 3
# A face HOG finds in the framed picture replaces the second detector's from this overlap (IoU).
REFOUND_OVERLAP = 0.3
# With on_take, take 1 is encoded on this many threads: its encoder is behind the drawing by
# a few dozen frames when take 1 is drawn, and take 2 is drawn only once it is done. Without
# (the CLI), the last take is: once its last frame is drawn, its encoder still has a few dozen
# frames to go (x264's lookahead and the frames queued in the pipe and in ffmpeg), with little
# else left to run beside it.
AWAITED_TAKE_THREADS = 2
# Takes scored at once: scoring is mostly OpenCV and the face model (GIL released, or in the
# embedding process), so a second scorer keeps up with takes drawn faster than one scores them.
SCORERS = 2


@dataclass(frozen=True)
class Inspection:
    """A sanitised photo and its subject, before any framing.

    ``faces`` are heads in source photo pixels (after EXIF orientation), left to right: human
    faces when ``kind == "face"``, animal faces when ``kind == "animal"``, none for ``"none"``.
    ``chosen`` is the index of the head to animate (None when there is none). ``damage`` is the
    old-scan check of the photo (``generation.restore.analyse``) when it was made beside
    detection; ``animate`` makes it otherwise.
    """

    image: SanitizedImage
    kind: SubjectKind
    faces: tuple[FaceBox, ...]
    chosen: int | None
    warnings: tuple[str, ...] = ()
    damage: DamageReport | None = None

    @classmethod
    def of(
        cls, image: SanitizedImage, subject: Subject, damage: DamageReport | None = None
    ) -> Inspection:
        """The inspection of ``image`` whose subject is ``subject`` (``find_subject`` of
        ``image.rgb``): its heads are kept in source pixels, also when ``image.rgb`` is the
        photo decoded smaller (``image.reduction``)."""
        faces = subject.faces
        if image.reduction != 1:
            faces = tuple(f.scaled(image.reduction, image.reduction) for f in faces)
        return cls(image, subject.kind, faces, subject.chosen, subject.warnings, damage)

    @property
    def shows_person(self) -> bool:
        """True only for a human face (consent is asked only then)."""
        return self.kind == "face"

    @property
    def face(self) -> FaceBox | None:
        """The chosen head, or None."""
        return None if self.chosen is None else self.faces[self.chosen]

    @property
    def subject(self) -> Subject:
        return Subject(self.kind, self.faces, self.chosen, self.warnings)

    def subject_json(self) -> dict[str, Any]:
        """``{"kind", "faces": [[x, y, w, h], ...], "chosen"}`` (DESIGN.md section 2)."""
        return self.subject.to_json()

    def choosing(self, face: int | None) -> Inspection:
        """This inspection with head ``face`` chosen; ``UsageError`` when out of range."""
        if face is None:
            return self
        chosen = choose(self.subject, face)
        return dataclasses.replace(
            self,
            kind=chosen.kind,
            faces=chosen.faces,
            chosen=chosen.chosen,
            warnings=chosen.warnings,
        )


class Animator:
    """Photo bytes + motion prompt -> ranked looping clips (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_image_bytes: int = DEFAULT_MAX_BYTES,
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
        identity_threshold: float | None = None,
        face_detector: FaceModel | None = None,
    ) -> None:
        """``face_detector``: one already loaded (the CLI loads it beside decoding the photo)."""
        from generation.quality import IDENTITY_THRESHOLD

        self.backend = backend
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels
        self.identity_threshold = (
            IDENTITY_THRESHOLD if identity_threshold is None else identity_threshold
        )
        self._detector: FaceModel | None = face_detector
        self._ready = False

    def setup(self, everything: bool = False) -> None:
        """Load the face detector and the backend (once per process; idempotent). With
        ``everything`` (a long-running worker), every face model too (``FaceModel.load``)."""
        faces = self._faces()
        if everything:
            faces.load(everything=True)
        if not self._ready:
            self.backend.setup()
            self._ready = True

    def _faces(self) -> FaceModel:
        """The face model, loaded on first use (inspection needs no backend weights)."""
        if self._detector is None:
            self._detector = FaceModel()
        return self._detector

    def inspect(self, image_bytes: bytes, face: int | None = None) -> Inspection:
        """Intake (sanitise) the photo and find its subject; ``UsageError`` if unusable or if
        ``face`` is out of range."""
        image = load_image(
            image_bytes, max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels
        )
        return self.inspect_image(image, face)

    def inspect_image(self, image: SanitizedImage, face: int | None = None) -> Inspection:
        """Find the subject of an already sanitised photo (``face``: which head to choose)."""
        return Inspection.of(image, find_subject(self._faces(), image.rgb, face))

    def animate(
        self,
        image_bytes: bytes,
        prompt: str,
        options: AnimateOptions,
        out_dir: Path,
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
        *,
        inspection: Inspection | None = None,
        on_take: TakeFn | None = None,
        before_export: Callable[[], None] | None = None,
    ) -> AnimateResult:
        """Run the whole pipeline and write clips, ``contact-sheet.png`` and ``summary.json``.

        ``inspection`` (from ``inspect``) skips a second intake/detection of the same bytes.
        ``on_take`` is called with each ``FinishedTake`` the moment its clip is encoded and
        scored (take 1 first; with a streaming backend, while later takes are still rendered).
        ``before_export`` is called before the first clip is written; whatever it raises
        aborts the run (the CLI finishes moderation there). An output folder this run created
        is removed again when the run fails before writing anything into it.
        """
        token = cancel or CancelToken()
        _check_options(options)
        self.setup()
        created = _prepare_out_dir(out_dir)
        try:
            return self._animate_into(
                image_bytes,
                prompt,
                options,
                out_dir,
                progress,
                token,
                inspection=inspection,
                on_take=on_take,
                before_export=before_export,
            )
        except BaseException:
            if created:
                with suppress(OSError):
                    out_dir.rmdir()  # only when empty
            raise

    def _animate_into(
        self,
        image_bytes: bytes,
        prompt: str,
        options: AnimateOptions,
        out_dir: Path,
        progress: ProgressFn,
        token: CancelToken,
        *,
        inspection: Inspection | None,
        on_take: TakeFn | None,
        before_export: Callable[[], None] | None,
    ) -> AnimateResult:
        """``animate`` once the options are checked and ``out_dir`` exists."""
        from generation.contact_sheet import write_contact_sheet
        from generation.frame_check import clip_fault
        from generation.motion import parse_motion
        from generation.preprocess import frame_subject
        from generation.quality import TakeScorer, rank

        timings: dict[str, float] = {}
        started = time.perf_counter()
        spec = parse_motion(prompt)
        if options.motion_scale != 1.0:
            spec = spec.scaled(options.motion_scale)

        mark = time.perf_counter()
        if inspection is None:
            image = load_image(
                image_bytes, max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels
            )
            timings["decode"] = time.perf_counter() - mark
            mark = time.perf_counter()
            inspection = self.inspect_image(image, options.face)
        else:
            timings["decode"] = 0.0
            inspection = inspection.choosing(options.face)
        image = inspection.image
        progress(0.04, "detect")
        model = self._faces()
        usable = inspection.subject.animatable
        framed = frame_subject(
            image.rgb,
            usable,
            crop=options.crop,
            size=options.size,
            reduction=image.reduction,
            finer=image.finer,
        )
        timings["detect"] = time.perf_counter() - mark
        restoration: dict[str, Any] = {}
        if options.restore != "off":
            # Old scans are cleaned at the working size: the cost does not grow with the scan.
            mark = time.perf_counter()
            human = framed.face if inspection.kind == "face" else None
            found = restore_working(
                image.rgb,
                framed.image,
                options.restore,
                face=human,
                model=model,
                report=inspection.damage,
            )
            framed = dataclasses.replace(framed, image=found.image)
            restoration = found.to_json()
            timings["restore"] = time.perf_counter() - mark
        mark = time.perf_counter()
        found_again = _found_again(model, inspection, framed)
        if found_again is not None:
            inspection, framed = found_again
        located: FaceBox | None = None
        if framed.face is not None and inspection.kind == "face":
            located = model.dense_landmarks(framed.image, framed.face)
            if not (inspection.face or located).frontal:
                located = _profile(located)
        elif framed.face is not None:
            located = _scale_animal(inspection.face, framed)
        focus = None
        if located is None:
            fx, fy = salient_centre(framed.image)
            focus = (fx, fy)
        timings["detect"] += time.perf_counter() - mark
        token.check()

        warnings = list(image.warnings) + list(spec.warnings) + list(inspection.warnings)
        seed = (
            options.seed
            if options.seed is not None
            # os.urandom's seed, as ``secrets`` draws it (whose import costs ~25 ms of start-up).
            else random.SystemRandom().randrange(2**31 - MAX_VARIATIONS)
        )
        frames = max(2, round(options.seconds * options.fps))
        request = RenderRequest(
            image=framed.image,
            spec=spec,
            variations=options.variations,
            frames=frames,
            fps=options.fps,
            seed=seed,
            face=located,
            kind=inspection.kind,
            focus=focus,
        )

        def render_progress(fraction: float, stage: str) -> None:
            progress(0.05 + 0.7 * min(1.0, max(0.0, fraction)), stage)

        paths = [out_dir / f"variation-{k + 1}.{options.format}" for k in range(options.variations)]
        takes: list[Take] = []
        all_scores: list[Scores] = []
        score_s: list[float] = []
        encode_done: list[float] = []
        encode_start = time.perf_counter()
        render_s = 0.0
        gate = _ExportGate(before_export)
        # Each frame is encoded (one ffmpeg per take, fed from an encoder thread) and scored
        # (``TakeScorer``, on one of SCORERS threads) as soon as it is drawn, so every take's
        # encoder and scorer run while later frames are drawn here and its scores are ready
        # moments after its last frame; a reporter thread hands each take to on_take, in take
        # order, when its clip is written.
        with (
            ThreadPoolExecutor(max_workers=min(3, options.variations)) as encoders,
            ThreadPoolExecutor(max_workers=SCORERS) as scorer,
            ThreadPoolExecutor(max_workers=1) as reporter,
        ):
            encodes: list[Future[Path]] = []
            scored: list[Future[Scores]] = []
            reports: list[Future[None]] = []
            thinning: list[Future[None]] = []
            feeds: list[_Feed] = []  # every take's feed, in order
            likeness: dict[tuple[int, ...], Likeness | None] = {}
            thinned: dict[int, tuple[tuple[int, ...], Frames]] = {}
            feed: _Feed | None = None  # the take being drawn, once its encoder is started

            likeness_lock = threading.Lock()

            def score_take(take_feed: _Feed) -> Scores:
                """Scores of one take, worked out as its frames are drawn; runs on a scorer
                thread. Raises ``_Aborted`` when the take is dropped or the run stops."""
                began = time.perf_counter()
                frames = take_feed.frames
                shape = tuple(frames.shape[1:3])
                with likeness_lock:  # one Likeness (and photo embedding) per frame size
                    if shape not in likeness:
                        likeness[shape] = _likeness(model, framed.image, located, inspection, shape)
                take_scorer = TakeScorer(frames, likeness[shape])
                busy = time.perf_counter() - began
                added = -1
                while added < len(frames) - 1:
                    ready = take_feed.wait_beyond(added)
                    mark = time.perf_counter()
                    for t in range(added + 1, ready + 1):
                        take_scorer.add(t)
                    added = ready
                    busy += time.perf_counter() - mark
                mark = time.perf_counter()
                result = take_scorer.result()
                score_s.append(busy + time.perf_counter() - mark)
                return result

            def prepare_likeness() -> None:
                """The likeness scorer of this photo, and (when a helper process makes the
                embeddings, off this process's GIL) the photo's own embedding: made while take 1
                is drawn instead of after it."""
                shape = tuple(framed.image.shape[:2])
                with likeness_lock:
                    if shape not in likeness:
                        likeness[shape] = _likeness(model, framed.image, located, inspection, shape)
                found = likeness[shape]
                if found is not None and model.embeds_elsewhere:
                    found.prepare()

            def start_encoder(frames: Frames) -> _Feed:
                nonlocal encode_start
                k = len(takes)
                if k == 0:
                    encode_start = time.perf_counter()
                if k == 1 and on_take is not None:
                    # Someone awaits each take: take 1's encode gets the CPU before take 2 is
                    # drawn (costs the job ~a tenth of its time, brings take 1 much sooner).
                    wait(encodes[:1])
                started = _Feed(frames)
                feeds.append(started)  # before any thread waits on it: an abort reaches it
                encodes.append(
                    encoders.submit(
                        _encode_feed,
                        started,
                        paths[k],
                        options,
                        gate,
                        token,
                        encode_done,
                        # Someone awaits each take: let take 1's encoder win the CPU, and
                        # use a second core for it while take 2 waits for it (see above).
                        TAKE_NICENESS_STEP * k if on_take is not None else 0,
                        _encoder_threads(on_take is not None, produced, options.variations),
                    )
                )
                scored.append(scorer.submit(score_take, started))
                return started

            def drop(take: Take, fault: str) -> None:
                nonlocal feed
                if feed is not None:
                    # Its encoder removes the partial clip; wait, as the next take reuses the path.
                    feed.abort()
                    if not encodes[-1].cancel():
                        wait(encodes[-1:])
                    encodes.pop()
                    scored.pop().cancel()  # a running scorer stops at the abort
                    feed = None
                dropped.append(fault)
                warnings.append(f"variation {produced} (seed {take.seed}) was dropped: {fault}")

            scorer.submit(prepare_likeness)
            events = self._frame_stream(request, render_progress, token)
            produced = 0  # takes the backend made, dropped ones included
            dropped: list[str] = []
            try:
                while True:
                    mark = time.perf_counter()
                    event = self._next_frame(events)
                    render_s += time.perf_counter() - mark
                    if event is None:
                        break
                    token.check()
                    gate.raise_failure()
                    if event.take != produced:
                        raise GenerationFailed("the backend drew takes out of order")
                    if feed is None and event.done is None:
                        feed = start_encoder(event.frames)  # a take drawn frame by frame
                    if event.done is None:
                        assert feed is not None
                        feed.drawn(event.t)
                        continue
                    take = event.done
                    produced += 1
                    if produced > options.variations:
                        raise GenerationFailed(
                            f"the backend returned more than {options.variations} takes"
                        )
                    # NaN/inf or black frames make a failed take: dropped with a warning, never
                    # delivered; the kept takes are numbered 1..n in order.
                    marked = take.info.get("failed")
                    fault = str(marked) if marked else clip_fault(take.frames)
                    if fault is not None:
                        drop(take, fault)
                        continue
                    if feed is None:
                        feed = start_encoder(take.frames)  # a take handed over whole
                    if take.frames is not feed.frames:
                        raise GenerationFailed("the backend finished a take it did not draw")
                    feed.drawn(len(take.frames) - 1)
                    feed = None
                    k = len(takes)
                    takes.append(take)
                    reports.append(
                        reporter.submit(
                            _report, on_take, k + 1, take.seed, encodes[k], scored[k], token
                        )
                    )
                    # Once encoded and scored, a take keeps only its contact-sheet thumbnails.
                    thinning.append(
                        reporter.submit(_thin_take, takes, k, thinned, encodes[k], scored[k])
                    )
            except BaseException:
                # Every take still being drawn (its encoder and scorer wait for frames that
                # will never come), also one whose encoder started an instant before an
                # interrupt, before ``feed`` was set.
                for unfinished in feeds:
                    if not unfinished.complete:
                        unfinished.abort()
                _cancel([*encodes, *scored, *reports])
                raise
            timings["warp"] = render_s
            if produced != options.variations or not takes:
                _cancel([*encodes, *scored, *reports])
                if produced != options.variations:
                    raise GenerationFailed(
                        f"the backend returned {produced} takes instead of {options.variations}"
                    )
                raise GenerationFailed(f"every take failed ({dropped[0]}); no clip was delivered")
            gate.open()  # the contact sheet and summary are written only once it has passed
            progress(0.76, "encode")
            for future in scored:
                all_scores.append(future.result())
                progress(0.8 + 0.15 * len(all_scores) / len(takes), "score")
            token.check()
            # Rank and draw the contact sheet while the last clips are still being encoded.
            ranked = rank(all_scores, self.identity_threshold)
            variations = tuple(
                VariationResult(
                    index=k + 1,
                    path=paths[k],
                    seed=takes[k].seed,
                    rank=ranked[k].rank,
                    scores=all_scores[k],
                    combined=ranked[k].combined,
                    flagged=ranked[k].flagged,
                    info=_jsonable(takes[k].info),
                )
                for k in range(len(takes))
            )
            for v in variations:
                if v.flagged:
                    warnings.append(
                        f"variation {v.index} changes the face (identity {v.scores.identity:.2f}); "
                        "prefer another take"
                    )
            if any(v.info.get("instead") == "breathing" for v in variations):
                warnings.append(
                    "the blink or smile asked for cannot be drawn on this face: it breathes "
                    "gently instead, so the picture does not stand still"
                )
            mark = time.perf_counter()
            try:
                sheet = write_contact_sheet(
                    [
                        _sheet_row(v, takes[v.index - 1], thinned.get(v.index - 1))
                        for v in variations
                    ],
                    out_dir / "contact-sheet.png",
                )
            except OSError as error:  # e.g. the run folder was deleted under a cancelled job
                raise GenerationFailed(
                    f"could not write the contact sheet: {error.strerror or error}"
                ) from None
            timings["sheet"] = time.perf_counter() - mark
            _cancel(thinning)  # the sheet is drawn: a take not thinned yet never needs to be
            for report in reports:
                report.result()
        timings["score"] = sum(score_s)
        timings["encode"] = max(encode_done, default=encode_start) - encode_start
        token.check()
        timings["total"] = time.perf_counter() - started
        result = AnimateResult(
            variations=variations,
            motion=spec.to_json(),
            warnings=tuple(dict.fromkeys(warnings)),
            contact_sheet=sheet,
            timings={k: round(v, 4) for k, v in timings.items()},
            restoration=restoration,
            subject=inspection.subject_json(),
        )
        try:
            write_atomically(
                out_dir / "summary.json", (json.dumps(result.to_json(), indent=2) + "\n").encode()
            )
        except OSError as error:
            raise GenerationFailed(
                f"could not write summary.json: {error.strerror or error}"
            ) from None
        progress(1.0, "done")
        return result

    def _frame_stream(
        self, request: RenderRequest, progress: ProgressFn, token: CancelToken
    ) -> Iterator[DrawnFrame]:
        """The backend's frames as they are drawn; a backend that hands over whole takes
        (streamed or from one ``render`` call) gives one event per take, at its last frame."""
        if isinstance(self.backend, FrameStreamingBackend):
            yield from self.backend.draw_frames(request, progress, token)
            return
        if isinstance(self.backend, StreamingBackend):
            stream: Iterable[Take] = self.backend.render_takes(request, progress, token)
        else:
            stream = self.backend.render(request, progress, token)
            if len(stream) != request.variations:
                raise GenerationFailed(
                    f"the backend returned {len(stream)} takes instead of {request.variations}"
                )
        for k, take in enumerate(stream):
            yield DrawnFrame(k, len(take.frames) - 1, take.frames, take.seed, take)

    def _next_frame(self, stream: Iterator[DrawnFrame]) -> DrawnFrame | None:
        """The next drawn frame, None at the end; a backend bug becomes ``GenerationFailed``."""
        try:
            return next(stream)
        except StopIteration:
            return None
        except LivingPhotoError:
            raise
        except Exception as error:  # a backend bug must not leak a traceback to users
            logger.info("backend %s failed: %s", self.backend.name, error)
            logger.debug("backend failure", exc_info=True)
            raise GenerationFailed(f"the {self.backend.name} backend failed: {error}") from error


class _ExportGate:
    """``before_export``, called once by the first encoder before it writes anything; its
    error is kept and raised to every encoder and, between frames, to the drawing thread."""

    def __init__(self, check: Callable[[], None] | None) -> None:
        self._check = check
        self._lock = threading.Lock()
        self._passed = check is None
        self._failure: BaseException | None = None

    def open(self) -> None:
        """Return once the check has passed; raise its error if it failed."""
        with self._lock:
            if not self._passed and self._failure is None:
                assert self._check is not None
                try:
                    self._check()
                    self._passed = True
                except BaseException as error:
                    self._failure = error
            if self._failure is not None:
                raise self._failure

    def raise_failure(self) -> None:
        """Raise the check's error if it has failed (cheap: no waiting)."""
        if self._failure is not None:
            raise self._failure


class _Aborted(Exception):
    """The take being encoded was dropped or the run stopped."""


class _Feed:
    """One take's frames, handed from the drawing thread to its encoder thread as drawn."""

    def __init__(self, frames: Frames) -> None:
        self.frames = frames
        self._drawn = -1  # frames 0..drawn are ready
        self._aborted = False
        self._changed = threading.Condition()

    def drawn(self, t: int) -> None:
        with self._changed:
            self._drawn = t
            self._changed.notify_all()

    @property
    def complete(self) -> bool:
        """Whether every frame of the take has been drawn."""
        return self._drawn >= len(self.frames) - 1

    def abort(self) -> None:
        with self._changed:
            self._aborted = True
            self._changed.notify_all()

    def wait_beyond(self, t: int) -> int:
        """Block until a frame after ``t`` is drawn; return the last drawn frame.
        Raises ``_Aborted`` once the take is dropped or the run stops."""
        with self._changed:
            while self._drawn <= t and not self._aborted:
                self._changed.wait()
            if self._aborted:
                raise _Aborted
            return self._drawn


def _encode_feed(
    feed: _Feed,
    path: Path,
    options: AnimateOptions,
    gate: _ExportGate,
    token: CancelToken,
    done: list[float],
    nicer: int = 0,
    threads: int = 1,
) -> Path:
    """Encode ``feed``'s frames to ``path`` as they are drawn (runs on an encoder thread), with
    ``threads`` x264 threads."""
    from generation.export import ClipWriter

    gate.open()  # nothing is written before the request is allowed
    if nicer > 0:  # Linux: per-thread niceness, inherited by the ffmpeg this thread starts
        with suppress(AttributeError, OSError):
            me = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, me, os.getpriority(os.PRIO_PROCESS, me) + nicer)
    frames = feed.frames
    writer = ClipWriter(path, options.fps, options.format, frames.shape[1:3], threads)
    try:
        sent = -1
        while sent < len(frames) - 1:
            ready = feed.wait_beyond(sent)
            token.check()
            for t in range(sent + 1, ready + 1):
                writer.write(frames[t])
            sent = ready
        written = writer.close()
    except BaseException:
        writer.abort()
        raise
    done.append(time.perf_counter())
    return written


def _encoder_threads(awaited: bool, take: int, takes: int) -> int:
    """x264 threads for take ``take`` (0-based, of ``takes``): two for the take that is waited
    for longest beside little other work (take 1 when someone awaits each take, else the
    last), one otherwise (``AWAITED_TAKE_THREADS``)."""
    first_awaited = awaited and take == 0
    last_alone = not awaited and take == takes - 1
    return AWAITED_TAKE_THREADS if first_awaited or last_alone else 1


def _cancel(futures: list[Future[Any]]) -> None:
    for future in futures:
        future.cancel()


def _report(
    on_take: TakeFn | None,
    index: int,
    seed: int,
    encoded: Future[Path],
    scored: Future[Scores],
    token: CancelToken,
) -> None:
    """Wait for take ``index``'s clip and scores, then hand them to ``on_take``."""
    path = encoded.result()
    scores = scored.result()
    if on_take is not None and not token.cancelled:
        on_take(FinishedTake(index=index, path=path, seed=seed, scores=scores))


def _thin_take(
    takes: list[Take],
    k: int,
    thinned: dict[int, tuple[tuple[int, ...], Frames]],
    encoded: Future[Path],
    scored: Future[Scores],
) -> None:
    """Once take ``k`` is encoded and scored, keep only the frames its contact-sheet row shows.

    ``thinned[k]`` is set before ``takes[k]`` is replaced, so a reader that looks ``takes[k]``
    up first and ``thinned`` second always gets a matching pair (``_sheet_row``)."""
    if encoded.exception() is not None or scored.exception() is not None:
        return
    take = takes[k]
    from generation.contact_sheet import thin_for_sheet

    picks, frames = thin_for_sheet(take.frames, _int_or_none(take.info.get("blink_peak")))
    thinned[k] = (picks, frames)
    takes[k] = dataclasses.replace(take, frames=frames)


def _sheet_row(
    v: VariationResult, take: Take, thin: tuple[tuple[int, ...], Frames] | None
) -> SheetRow:
    """The contact-sheet row of variation ``v`` (``take`` read before ``thin``)."""
    from generation.contact_sheet import SheetRow

    picks, frames = thin if thin is not None else (None, take.frames)
    return SheetRow(
        index=v.index,
        frames=frames,
        scores=v.scores,
        rank=v.rank,
        flagged=v.flagged,
        blink_peak=_int_or_none(take.info.get("blink_peak")),
        indices=picks,
    )


def _scale_face(
    face: FaceBox | None, source_shape: tuple[int, ...], target_hw: tuple[int, ...]
) -> FaceBox | None:
    """``face`` (in an image of ``source_shape``) in the coordinates of a ``target_hw`` image."""
    if face is None or tuple(source_shape[:2]) == tuple(target_hw[:2]):
        return face
    return face.scaled(target_hw[1] / source_shape[1], target_hw[0] / source_shape[0])


def _likeness(
    model: FaceModel,
    still: NDArray[np.uint8],
    face: FaceBox | None,
    inspection: Inspection,
    shape: tuple[int, ...],
) -> Likeness | None:
    """The likeness scorer for takes of ``shape`` (H, W), or None without a usable human face
    (none, an animal, or a face only the second detector found: dlib's landmarks, fitted in a
    box of another detector's making, do not align its chips well enough to compare)."""
    chosen = inspection.face
    if face is None or chosen is None or inspection.kind != "face":
        return None
    if chosen.detector == "blazeface":
        return None
    reference = still
    if tuple(still.shape[:2]) != tuple(shape[:2]):
        reference = np.asarray(
            cv2.resize(still, (shape[1], shape[0]), interpolation=cv2.INTER_AREA), dtype=np.uint8
        )
    scaled = _scale_face(face, still.shape, shape)
    assert scaled is not None
    return Likeness(model, reference, scaled)


def _found_again(
    model: FaceModel, inspection: Inspection, framed: Framed
) -> tuple[Inspection, Framed] | None:
    """A face only the second detector found in the photo, found again by HOG in the framed
    picture (the face larger, its surroundings cut away, an old scan cleaned): the inspection
    and framing with HOG's face instead, so it blinks and gets a likeness score; None when HOG
    still misses it (or the face is not a second-detector face). HOG's face must overlap the
    second detector's by ``REFOUND_OVERLAP`` (intersection over union)."""
    chosen = inspection.face
    if (
        inspection.kind != "face"
        or chosen is None
        or chosen.detector != "blazeface"
        or framed.face is None
    ):
        return None
    face = _hog_face_over(model, framed.image, framed.face)
    if face is None:
        return None
    x0, y0, x1, y1 = framed.crop
    sx = framed.image.shape[1] / (x1 - x0)
    sy = framed.image.shape[0] / (y1 - y0)
    in_photo = face.scaled(1 / sx, 1 / sy, x0, y0)
    faces = list(inspection.faces)
    assert inspection.chosen is not None
    faces[inspection.chosen] = in_photo
    warnings = tuple(w for w in inspection.warnings if not w.startswith(SECOND_DETECTOR_WARNING))
    refound = dataclasses.replace(inspection, faces=tuple(faces), warnings=warnings)
    return refound, dataclasses.replace(framed, face=face)


def _hog_face_over(model: FaceModel, picture: NDArray[np.uint8], target: FaceBox) -> FaceBox | None:
    """HOG's face in ``picture`` that overlaps ``target`` most (``REFOUND_OVERLAP`` at least),
    with its landmarks in ``picture``'s pixels, or None. Searched at HOG's working size (a
    smaller picture enlarged to it) and, when that finds none, at the picture's own size: a
    damaged face sits near HOG's threshold, where the scale decides."""
    height, width = picture.shape[:2]
    up = DETECT_LONG_SIDE / max(height, width)
    searches = [up, 1.0] if up > 1.0 else [1.0]
    for scale in searches:
        work = picture
        if scale != 1.0:
            size = (round(width * scale), round(height * scale))
            work = np.asarray(cv2.resize(picture, size, interpolation=cv2.INTER_CUBIC), np.uint8)
        found = model.find_faces_hog(work)
        if scale != 1.0:
            found = [model.landmarks(picture, f.scaled(1 / scale, 1 / scale)) for f in found]
        best = max(found, key=lambda f: _iou(f, target), default=None)
        if best is not None and _iou(best, target) >= REFOUND_OVERLAP:
            return best
    return None


def _iou(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two boxes."""
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / float(a.w * a.h + b.w * b.h - inter)


def _profile(face: FaceBox) -> FaceBox:
    """``face`` marked as a profile view (the backend then skips the blink)."""
    return dataclasses.replace(face, frontal=False)


def _scale_animal(face: FaceBox | None, framed: Framed) -> FaceBox | None:
    """An animal's head box (source pixels) in the framed picture's pixels, eyes estimated."""
    if face is None:
        return None
    x0, y0 = framed.crop[0], framed.crop[1]
    sx = framed.image.shape[1] / (framed.crop[2] - framed.crop[0])
    sy = framed.image.shape[0] / (framed.crop[3] - framed.crop[1])
    return face.scaled(sx, sy, -x0 * sx, -y0 * sy)


def _prepare_out_dir(out_dir: Path) -> bool:
    """Create ``out_dir`` (before any work, so a bad ``--out`` fails fast); True when this
    call created it."""
    existed = out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"cannot create the output folder {out_dir}: {error.strerror or error}"
        ) from None
    if not out_dir.is_dir():
        raise UsageError(f"the output folder {out_dir} is not a folder")
    return not existed


def _check_options(options: AnimateOptions) -> None:
    if not 1 <= options.variations <= MAX_VARIATIONS:
        raise UsageError(f"variations must be between 1 and {MAX_VARIATIONS}")
    if not 1.0 <= options.seconds <= 6.0:
        raise UsageError("seconds must be between 1 and 6")
    if not 8 <= options.fps <= 30:
        raise UsageError("fps must be between 8 and 30")
    if not 128 <= options.size <= 1024:
        raise UsageError("size must be between 128 and 1024")
    if options.format not in ("mp4", "gif", "webp"):
        raise UsageError("format must be mp4, gif or webp")
    if options.crop not in ("auto", "none"):
        raise UsageError("crop must be auto or none")
    if options.restore not in ("auto", "on", "off"):
        raise UsageError("restore must be auto, on or off")


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, (int, np.integer)) else None


def _jsonable(info: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(info, default=_json_default))  # type: ignore[no-any-return]


def _json_default(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
