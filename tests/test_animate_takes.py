"""``Animator.animate`` encodes frames as they are drawn, hands each take over as soon as it is
encoded and scored (``on_take``), and writes nothing before ``before_export`` passes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from generation.animator import AnimateOptions, Animator, FinishedTake
from generation.backend import CancelToken, DrawnFrame, ProgressFn, RenderRequest, Take
from generation.backends import make_backend
from livingphoto.errors import Cancelled, PolicyRefusal

ASTRONAUT = Path(__file__).resolve().parent.parent / "examples" / "astronaut.jpg"
SMALL = AnimateOptions(variations=3, seconds=1.0, fps=8, size=160, seed=3)


def test_each_take_is_reported_in_order_with_its_clip_and_scores(tmp_path: Path) -> None:
    animator = Animator(make_backend("warp"))
    reported: list[tuple[FinishedTake, bool]] = []

    def on_take(take: FinishedTake) -> None:
        reported.append((take, take.path.is_file() and take.path.stat().st_size > 0))

    result = animator.animate(
        ASTRONAUT.read_bytes(), "subtle blink", SMALL, tmp_path / "out", on_take=on_take
    )
    assert [t.index for t, _ in reported] == [1, 2, 3]
    assert all(written for _, written in reported)  # the clip existed when it was reported
    for (take, _), final in zip(reported, result.variations, strict=True):
        assert take.path == final.path and take.seed == final.seed
        assert take.scores == final.scores  # rank/flag come later; the scores do not change


def test_a_refusal_before_export_writes_no_clip(tmp_path: Path) -> None:
    animator = Animator(make_backend("warp"))
    reported: list[FinishedTake] = []

    def refuse() -> None:
        raise PolicyRefusal("sexual content", "not allowed")

    with pytest.raises(PolicyRefusal):
        animator.animate(
            ASTRONAUT.read_bytes(),
            "subtle blink",
            SMALL,
            tmp_path / "out",
            on_take=reported.append,
            before_export=refuse,
        )
    assert not reported
    assert not (tmp_path / "out").exists()  # the folder this run made is gone again


def test_a_failed_run_keeps_a_folder_that_was_there(tmp_path: Path) -> None:
    kept = tmp_path / "mine"
    kept.mkdir()

    def refuse() -> None:
        raise PolicyRefusal("sexual content", "not allowed")

    with pytest.raises(PolicyRefusal):
        Animator(make_backend("warp")).animate(
            ASTRONAUT.read_bytes(), "subtle blink", SMALL, kept, before_export=refuse
        )
    assert kept.is_dir()


class FlatMiddleTake:
    """A frame-streaming backend (like warp) whose second take turns black half-way: it is
    encoded while drawn, then dropped, and the takes after it keep consecutive numbers."""

    name = "flat-middle"

    def __init__(self, drawn: list[tuple[int, int]]) -> None:
        self.drawn = drawn

    def setup(self) -> None:
        """Nothing to load."""

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
    ) -> list[Take]:
        return [e.done for e in self.draw_frames(request, progress, cancel) if e.done]

    def draw_frames(
        self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
    ) -> Iterator[DrawnFrame]:
        for k in range(request.variations):
            frames = np.empty((request.frames, *request.image.shape), dtype=np.uint8)
            for t in range(request.frames):
                cancel.check()
                black = k == 1 and t >= request.frames // 2
                frames[t] = 0 if black else np.roll(request.image, t % 3, axis=1)
                self.drawn.append((k, t))
                done = Take(frames, request.seed + k) if t == request.frames - 1 else None
                yield DrawnFrame(k, t, frames, request.seed + k, done)


def test_a_take_dropped_while_encoding_leaves_no_file_and_keeps_numbers(tmp_path: Path) -> None:
    drawn: list[tuple[int, int]] = []
    animator = Animator(FlatMiddleTake(drawn))
    reported: list[FinishedTake] = []
    result = animator.animate(
        ASTRONAUT.read_bytes(), "subtle blink", SMALL, tmp_path / "out", on_take=reported.append
    )
    assert len(drawn) == 3 * 8  # every frame of every take was drawn once
    assert [v.index for v in result.variations] == [1, 2]
    assert [t.index for t in reported] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "out").glob("variation-*")) == [
        "variation-1.mp4",
        "variation-2.mp4",
    ]
    assert result.variations[1].seed == 3 + 2  # the third take, numbered 2
    assert any("variation 2" in w and "dropped" in w for w in result.warnings)


def test_a_cancel_while_drawing_stops_the_encoders(tmp_path: Path) -> None:
    token = CancelToken()
    drawn: list[tuple[int, int]] = []

    class CancelsMidway(FlatMiddleTake):
        def draw_frames(
            self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
        ) -> Iterator[DrawnFrame]:
            for event in super().draw_frames(request, progress, cancel):
                if event.take == 1 and event.t == 2:
                    token.cancel()
                yield event

    with pytest.raises(Cancelled):
        Animator(CancelsMidway(drawn)).animate(
            ASTRONAUT.read_bytes(), "subtle blink", SMALL, tmp_path / "out", cancel=token
        )
    assert (1, 2) in drawn and (2, 0) not in drawn
    assert not list((tmp_path / "out").glob("variation-2*"))  # the unfinished take's clip


def test_the_json_names_the_contact_sheet_and_no_partial_file_is_left(tmp_path: Path) -> None:
    result = Animator(make_backend("warp")).animate(
        ASTRONAUT.read_bytes(), "subtle blink", SMALL, tmp_path / "out"
    )
    report = result.to_json()
    assert report["contact_sheet"] == str(tmp_path / "out" / "contact-sheet.png")
    assert not list((tmp_path / "out").glob(".*.part"))  # written whole, then renamed


def test_an_atomic_write_that_fails_leaves_neither_file(tmp_path: Path) -> None:
    from livingphoto.atomic import write_atomically

    target = tmp_path / "folder-not-file"
    target.mkdir()
    with pytest.raises(OSError):
        write_atomically(target, b"data")  # cannot replace a directory with a file
    assert target.is_dir() and not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize("where", ["mid-take", "as a take begins"])
def test_an_interrupt_while_drawing_stops_every_thread(tmp_path: Path, where: str) -> None:
    """Ctrl-C (KeyboardInterrupt in the drawing thread) ends the run at once: no encoder or
    scorer is left waiting for frames, so no thread and no ffmpeg outlives ``animate``."""
    import threading

    import psutil  # type: ignore[import-untyped]

    stop_at = (1, 2) if where == "mid-take" else (2, 0)

    class Interrupted(FlatMiddleTake):
        def draw_frames(
            self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
        ) -> Iterator[DrawnFrame]:
            for event in super().draw_frames(request, progress, cancel):
                yield event
                if (event.take, event.t) == stop_at:
                    raise KeyboardInterrupt

    before = threading.active_count()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            Animator(Interrupted([])).animate(
                ASTRONAUT.read_bytes(), "subtle blink", SMALL, tmp_path / "out"
            )
        except BaseException as error:  # the outcome is checked below
            outcome.append(error)

    runner = threading.Thread(target=run)
    runner.start()
    runner.join(timeout=60)
    assert not runner.is_alive(), "animate hung after the interrupt"
    assert len(outcome) == 1 and isinstance(outcome[0], KeyboardInterrupt)
    assert threading.active_count() == before
    assert not [p for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()]


@pytest.mark.parametrize("awaited", [False, True])
def test_the_take_waited_for_longest_gets_a_second_encoder_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, awaited: bool
) -> None:
    from generation import export

    threads: dict[str, int] = {}

    class Recording(export.ClipWriter):
        def __init__(
            self, path: Path, fps: int, fmt: export.ClipFormat, size: tuple[int, ...], n: int = 1
        ) -> None:
            threads[path.name] = n
            super().__init__(path, fps, fmt, size, n)

    monkeypatch.setattr(export, "ClipWriter", Recording)
    reported: list[FinishedTake] = []
    Animator(make_backend("warp")).animate(
        ASTRONAUT.read_bytes(),
        "subtle blink",
        SMALL,
        tmp_path / "out",
        on_take=reported.append if awaited else None,
    )
    # Someone awaits each take (a chat): take 1, which reaches them first. The CLI: the last
    # take, whose encoder finishes after everything else is drawn.
    want = [2, 1, 1] if awaited else [1, 1, 2]
    assert [threads[f"variation-{k}.mp4"] for k in (1, 2, 3)] == want
