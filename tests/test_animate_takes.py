"""``Animator.animate`` hands each take over as soon as it is encoded and scored (``on_take``),
and writes nothing before ``before_export`` passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from generation.animator import AnimateOptions, Animator, FinishedTake
from generation.backends import make_backend
from livingphoto.errors import PolicyRefusal

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
    assert not list((tmp_path / "out").glob("variation-*"))
