"""``livingphoto animate PHOTO "MOTION PROMPT"``: ranked looping clips from one photo (DESIGN.md §2).

Usage::

    livingphoto animate examples/astronaut.jpg "subtle blink, slight head tilt" --consent
    livingphoto animate photo.jpg "gentle breathing" --variations 4 --seconds 2 --json

Writes ``variation-{k}.{format}``, ``contact-sheet.png`` and ``summary.json`` into ``--out``.
Exit codes: 0 done, 2 unusable input or arguments, 3 refused (consent or policy), 4 failed.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from livingphoto.errors import ConsentRequired, GenerationFailed, LivingPhotoError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from generation.animator import Inspection
    from generation.embedding import EmbeddingProcess
    from moderation.cli_check import CheckProcess

logger = logging.getLogger(__name__)

DEFAULT_OUT = Path("livingphoto-out")
# A big JPEG is decoded at the DCT scale (1/2, 1/4, 1/8) that keeps at least this long a side:
# more than the finer face search (2 x 640 px) and the largest --size (1024) use; a crop that
# needs more detail is decoded again finer (``SanitizedImage.finer``). A 12 MP phone photo
# decodes at 2000 x 1500 in about 40 % of the time, and everything after it (the face search's
# and the moderation's copies, the old-scan check, the framing) shrinks a quarter of the pixels.
WORKING_SIDE = 1600
BACKEND_CHOICES = ("warp", "diffusers")


def _int_in(low: int, high: int, name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be a whole number, got {text!r}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{name} must be between {low} and {high}, got {value}"
            )
        return value

    return parse


def _float_in(low: float, high: float, name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{name} must be between {low:g} and {high:g}, got {text}"
            )
        return value

    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a whole number, got {text!r}") from None
    if not 0 <= value < 2**31 - 8:
        raise argparse.ArgumentTypeError("seed must be between 0 and 2147483639")
    return value


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``animate`` subcommand to ``sub``."""
    parser = sub.add_parser(
        "animate",
        help="turn a photo and a motion prompt into looping clips",
        description="Turn one photo and a short motion prompt into ranked, seamless looping clips.",
    )
    parser.add_argument("photo", type=Path, help="JPEG, PNG, WebP, GIF, HEIC/HEIF or AVIF photo")
    parser.add_argument("prompt", help='motion prompt, e.g. "subtle blink, gentle breathing"')
    parser.add_argument(
        "--variations", type=_int_in(1, 8, "--variations"), default=3, help="takes to make (1-8)"
    )
    parser.add_argument(
        "--seconds", type=_float_in(1.0, 6.0, "--seconds"), default=3.0, help="loop length (1-6)"
    )
    parser.add_argument("--fps", type=_int_in(8, 30, "--fps"), default=24, help="frames per second")
    parser.add_argument(
        "--size", type=_int_in(128, 1024, "--size"), default=512, help="long side in pixels"
    )
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="warp")
    parser.add_argument("--model", default="", help="model id or folder (diffusers backend)")
    parser.add_argument("--seed", type=_seed, default=None, help="seed of variation 1")
    parser.add_argument("--crop", choices=("auto", "none"), default="auto")
    parser.add_argument("--format", choices=("mp4", "gif", "webp"), default="mp4")
    parser.add_argument(
        "--restore",
        choices=("auto", "on", "off"),
        default="auto",
        help="clean old scans first (grain, dust, scratches, creases); auto: only when found",
    )
    parser.add_argument(
        "--face",
        type=_int_in(0, 63, "--face"),
        default=None,
        help="which detected face to animate (0-based, left to right; default: the largest)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument(
        "--consent",
        action="store_true",
        help="I have the permission of the person pictured to animate this photo",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run_animate)


def _check_consent(inspection: Inspection, consent: bool) -> None:
    if inspection.shows_person and not consent:
        raise ConsentRequired(
            "this photo shows a person: pass --consent after checking that you have "
            "the pictured person's permission to animate it"
        )


def _sent_for_moderation(
    prompt: str, rgb: NDArray[np.uint8], check: CheckProcess
) -> NDArray[np.uint8]:
    """The photo's ``moderation_copy``, sent with ``prompt`` to the moderation process (runs on
    a loader thread, so that the check runs while the face is searched)."""
    from moderation.cli_check import moderation_copy

    photo = moderation_copy(rgb)
    check.submit(prompt, photo)
    return photo


def _verdict(
    prompt: str, photo: NDArray[np.uint8], check: CheckProcess, data_dir: Path
) -> Callable[[], None]:
    """The wait for the moderation process's verdict on the request sent to it (``photo``: the
    ``moderation_copy`` it was sent); the animator calls it before writing anything. Without a
    verdict from the process, the same check runs here: a request is never let through
    unchecked. Raises ``PolicyRefusal``."""
    from moderation.cli_check import CheckUnavailable, CliModeration

    def verdict() -> None:
        try:
            check.verdict()
        except CheckUnavailable as error:
            logger.info("%s: checking in this process", error)
            CliModeration.load().check(prompt, photo, data_dir)

    return verdict


class ProgressBar:
    """A one-line progress bar on a terminal; silent elsewhere."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self._last = -1

    def __call__(self, fraction: float, stage: str) -> None:
        if not self.enabled:
            return
        percent = round(100 * min(1.0, max(0.0, fraction)))
        if percent == self._last:
            return
        self._last = percent
        filled = percent * 30 // 100
        self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {percent:3d}% {stage:<8}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._last >= 0:
            self.stream.write("\n")
            self.stream.flush()


def run_animate(args: argparse.Namespace) -> int:
    """The ``animate`` handler: errors become one line (LivingPhotoError), never a traceback."""
    try:
        return _run_animate(args)
    except BrokenPipeError:
        # stdout was closed early (e.g. piped into `head`): finish quietly, as the shell expects.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        raise
    except Exception as error:
        if _interrupted(error):
            # Ctrl-C during an import comes back as an ImportError ("initialization failed"),
            # which may itself become "dlib is not installed": it is still an interrupt.
            raise KeyboardInterrupt from None
        if isinstance(error, LivingPhotoError):
            raise
        logger.debug("animate failed", exc_info=True)
        text = " ".join(str(error).split())[:200] or type(error).__name__
        raise GenerationFailed(f"animation failed unexpectedly: {text}") from None


def _interrupted(error: BaseException) -> bool:
    """Whether a ``KeyboardInterrupt`` caused ``error`` (anywhere in its chain of causes)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _run_animate(args: argparse.Namespace) -> int:
    """Start-up pays only for the work at hand, and each model loads while something else runs.

    In time order: numpy and Pillow are imported, then the moderation process starts (forked
    where it can be: it imports and loads the prompt policy and the NSFW model on the core
    this process leaves idle, see ``moderation.cli_check``); the prompt is parsed; the photo is
    decoded; on loader threads, the moderation copy of the photo is made (and, with
    ``--consent``, sent to the moderation process at once), dlib's HOG detector searches for
    faces (releasing the GIL), the landmark models load and the old-scan check runs, while the
    main thread imports the animation code. Without ``--consent`` the request goes to the
    moderation process once consent is settled. Its verdict is awaited before anything is
    written (``before_export``), while the first take is drawn.
    """
    # Start-up allocates ~10^5 objects that live until exit: the cyclic garbage collector's
    # passes over them (~80 of them, ~10 ms) are skipped until the imports are done.
    gc.disable()
    try:
        from livingphoto.data_dir import cli_data_dir
        from moderation.cli_check import CheckProcess

        data_dir = cli_data_dir()
        # The moderation process is forked once numpy and Pillow are imported, which both
        # processes need: the child inherits them instead of importing them again (~60 ms of
        # CPU, for ~30 ms more of this process's start-up running alone).
        import numpy  # noqa: F401
        import PIL.Image  # noqa: F401

        with CheckProcess(data_dir).start() as check:
            from generation.motion import parse_motion

            parse_motion(args.prompt)  # bad prompts fail before any decoding
            return _start_animating(args, check, data_dir)
    finally:
        gc.enable()  # here too when start-up failed (e.g. a run inside a test process)


def _start_animating(args: argparse.Namespace, check: CheckProcess, data_dir: Path) -> int:
    """``_run_animate`` once the moderation process runs and the prompt is known to parse."""
    with (
        _embedding_process() as embedder,
        ThreadPoolExecutor(max_workers=4, thread_name_prefix="lp-load") as loader,
    ):
        from livingphoto.memory import reuse_freed_memory

        reuse_freed_memory()  # one job, then exit: keep freed frames' memory for the next take
        pending: list[Future[Any]] = []
        try:
            return _animate_with(args, loader, pending, embedder, check, data_dir)
        finally:
            # An early error must not wait for work it will never use.
            for future in pending:
                future.cancel()


@contextmanager
def _embedding_process() -> Iterator[EmbeddingProcess]:
    """The face-recognition network in a helper process (``generation.embedding``): started on
    the first embedding a take needs (a face that only moved needs none), stopped with the run."""
    from generation.embedding import RECOGNIZER_FILE, EmbeddingProcess, models_dir

    with EmbeddingProcess(models_dir() / RECOGNIZER_FILE) as process:
        yield process


def _animate_with(
    args: argparse.Namespace,
    loader: ThreadPoolExecutor,
    pending: list[Future[Any]],
    embedder: EmbeddingProcess,
    check: CheckProcess,
    data_dir: Path,
) -> int:
    from moderation.cli_check import moderation_copy
    from moderation.intake import load_image_file

    # The photo decodes on a loader thread (OpenCV and Pillow release the GIL) while this one
    # imports the face code and builds the detector: a 12 MP phone photo takes ~0.1 s.
    decoded = loader.submit(load_image_file, args.photo, working_side=WORKING_SIDE)
    pending.append(decoded)
    from generation.faces import FaceModel
    from generation.restore import analyse
    from generation.subject import find_subject

    model = FaceModel(embedder=embedder)
    sanitized = decoded.result()
    # The moderation process has loaded by now and waits for the photo. With --consent nothing
    # the search can find stops the request, so it is sent at once and checked while the face
    # is searched (on a 12 MP photo the process would otherwise idle for ~0.25 s and then
    # compete with the drawing); without, it is sent once consent is settled.
    if args.consent:
        photo_copy = loader.submit(_sent_for_moderation, args.prompt, sanitized.rgb, check)
    else:
        photo_copy = loader.submit(moderation_copy, sanitized.rgb)
    # Detection next: dlib's HOG releases the GIL at once, and the old-scan check and the
    # landmark models' load (which holds the GIL for ~70 ms) then run beside it, not before it:
    # the load waits for the search to start (a big photo is shrunk for it first).
    found = loader.submit(find_subject, model, sanitized.rgb, args.face)
    damage = loader.submit(analyse, sanitized.rgb) if args.restore == "auto" else None
    pending.append(loader.submit(model.load_beside_search))
    pending.extend(future for future in (found, damage, photo_copy) if future is not None)

    from generation.animator import AnimateOptions, Animator, Inspection
    from generation.backends import make_backend

    # What is imported by now lives until exit: keep it out of the cyclic garbage collector's
    # sight (its passes over ~10^5 module objects cost ~20 ms during a run and ~40 ms at exit).
    gc.freeze()
    gc.enable()

    options = AnimateOptions(
        variations=args.variations,
        seconds=args.seconds,
        fps=args.fps,
        size=args.size,
        seed=args.seed,
        crop=args.crop,
        format=args.format,
        face=args.face,
        restore=args.restore,
    )
    animator = Animator(make_backend(args.backend, args.model), face_detector=model)
    inspection = Inspection.of(
        sanitized, found.result(), damage.result() if damage is not None else None
    )
    _check_consent(inspection, args.consent)
    if not inspection.shows_person:
        embedder.close()  # only a human face is compared with the photo
    photo = photo_copy.result()
    if not args.consent:
        check.submit(args.prompt, photo)
    allowed = _verdict(args.prompt, photo, check, data_dir)
    if args.backend != "warp":
        allowed()  # model weights load only once the request is allowed
    animator.setup()
    bar = ProgressBar(sys.stderr, enabled=sys.stderr.isatty() and not args.json)
    try:
        result = animator.animate(
            b"",
            args.prompt,
            options,
            args.out,
            progress=bar,
            inspection=inspection,
            before_export=allowed,
        )
    finally:
        bar.close()
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    for v in sorted(result.variations, key=lambda v: v.rank):
        s = v.scores
        flag = "  (face drifts: not recommended)" if v.flagged else ""
        print(
            f"#{v.rank} {v.path}  identity {s.identity:.3f}  loop seam {s.loop_seam:.3f}  "
            f"flicker {s.flicker:.3f}  motion {s.motion:.2f}%{flag}"
        )
    if result.contact_sheet is not None:
        print(f"contact sheet: {result.contact_sheet}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
