"""livingphoto.resample: quick shrinking of big photos that matches one area resample."""

from __future__ import annotations

import cv2
import images
import numpy as np
import pytest

from livingphoto.resample import halve_towards, shrink


def _photo(width: int, height: int) -> np.ndarray:
    """A detailed picture (the astronaut, stretched) of ``width`` x ``height``."""
    rgb = cv2.cvtColor(cv2.imread(str(images.EXAMPLES / "astronaut.jpg")), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC))


@pytest.mark.parametrize(
    ("source", "target"),
    [((4032, 3024), (640, 480)), ((3001, 2251), (1024, 768)), ((2000, 1501), (384, 288))],
)
def test_shrink_matches_one_area_resample(source: tuple[int, int], target: tuple[int, int]) -> None:
    photo = _photo(*source)
    direct = cv2.resize(photo, target, interpolation=cv2.INTER_AREA).astype(np.float32)
    quick = shrink(photo, target)
    assert quick.shape == (target[1], target[0], 3) and quick.dtype == np.uint8
    difference = np.abs(quick.astype(np.float32) - direct)
    # Within about a grey level on average (an odd side shifts the grid by under a source pixel);
    # nearest-neighbour sampling of the same picture is several levels off.
    assert float(difference.mean()) < 1.5
    nearest = cv2.resize(photo, target, interpolation=cv2.INTER_NEAREST).astype(np.float32)
    assert float(difference.mean()) < 0.5 * float(np.abs(nearest - direct).mean())
    grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    assert shrink(grey, target).shape == (target[1], target[0])


def test_a_halving_is_the_exact_two_by_two_average() -> None:
    photo = _photo(301, 201)  # odd: the last row and column are dropped
    half = halve_towards(photo, (76, 51))  # halved once: 150 x 100 is under twice the target
    assert half.shape == (100, 150, 3)
    blocks = photo[:200, :300].astype(np.float64).reshape(100, 2, 150, 2, 3).mean(axis=(1, 3))
    assert np.abs(half.astype(np.float64) - blocks).max() <= 0.5 + 1e-9


def test_a_picture_close_to_the_target_is_not_halved() -> None:
    photo = _photo(500, 400)
    assert halve_towards(photo, (300, 250)) is photo
    assert shrink(photo, (500, 400)) is photo


@pytest.mark.parametrize("size", [(0, 10), (10, 0), (501, 10), (10, 401)])
def test_shrink_refuses_a_size_it_cannot_make(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="cannot shrink"):
        shrink(_photo(500, 400), size)
