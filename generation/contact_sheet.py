"""Contact sheet: one row of thumbnails per variation, labelled with its index, rank and scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.backend import Frames
from generation.quality import Scores
from livingphoto.atomic import write_atomically

THUMB_HEIGHT = 160
LABEL_WIDTH = 150
GAP = 4
BACKGROUND = (24, 24, 28)
TEXT = (235, 235, 235)
FLAG = (255, 120, 90)
# Label text: OpenCV's Hershey sans-serif at this scale (cap height ~7 px), its baseline this far
# below the label's top.
TEXT_SCALE = 0.33
TEXT_BASELINE = 10


@dataclass(frozen=True)
class SheetRow:
    index: int  # 1-based variation index
    frames: Frames
    scores: Scores
    rank: int
    flagged: bool = False
    blink_peak: int | None = None  # frame index to include (the most telling frame)
    # When set, ``frames`` holds only the thumbnails of these frames of the take, in order
    # (``thin_for_sheet``).
    indices: tuple[int, ...] | None = None


def pick_frames(count: int, wanted: int = 6, must: int | None = None) -> list[int]:
    """``wanted`` frame indices spread over the loop (last one excluded: it repeats the first)."""
    usable = max(1, count - 1)
    picks = {round(v) for v in np.linspace(0, usable - 1, num=min(wanted, usable))}
    if must is not None and 0 <= must < count and must not in picks:
        nearest = min(picks - {0}, key=lambda p: abs(p - must), default=None)
        if nearest is not None:
            picks.discard(nearest)
        picks.add(must)
    return sorted(picks)


def thin_for_sheet(
    frames: Frames, blink_peak: int | None = None, wanted: int = 6
) -> tuple[tuple[int, ...], Frames]:
    """The frames a sheet row shows (``pick_frames``) as ``(indices, thumbnails)``, the
    thumbnails ``THUMB_HEIGHT`` pixels high (N, THUMB_HEIGHT, W', 3): a take's full frames
    (T, H, W, 3) can be released, and the resizing is done, before the sheet is drawn."""
    picks = tuple(pick_frames(len(frames), wanted, blink_peak))
    return picks, np.stack([_thumb(frames[i]) for i in picks])


def _thumb(frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``frame`` resized to ``THUMB_HEIGHT`` pixels high (itself when it already is)."""
    height, width = frame.shape[:2]
    if height == THUMB_HEIGHT:
        return frame
    size = (max(1, round(width * THUMB_HEIGHT / height)), THUMB_HEIGHT)
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def write_contact_sheet(rows: Sequence[SheetRow], path: Path, frames_per_row: int = 6) -> Path:
    """Render the sheet as a PNG at ``path`` and return it."""
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    rendered: list[tuple[SheetRow, list[tuple[int, NDArray[np.uint8]]]]] = []
    for row in rows:
        if row.indices is not None:
            shown = list(zip(row.indices, row.frames, strict=True))
        else:
            picks = pick_frames(len(row.frames), frames_per_row, row.blink_peak)
            shown = [(i, row.frames[i]) for i in picks]
        rendered.append((row, [(i, _thumb(frame)) for i, frame in shown]))
    thumb_w = rendered[0][1][0][1].shape[1]
    columns = max(len(t) for _, t in rendered)
    width = LABEL_WIDTH + columns * (thumb_w + GAP) + GAP
    height = len(rendered) * (THUMB_HEIGHT + 14 + GAP) + GAP
    sheet = np.empty((height, width, 3), dtype=np.uint8)
    sheet[...] = BACKGROUND
    for r, (row, thumbs) in enumerate(rendered):
        top = GAP + r * (THUMB_HEIGHT + 14 + GAP)
        s = row.scores
        lines = [
            f"variation {row.index}",
            f"rank {row.rank}" + ("  FLAGGED" if row.flagged else ""),
            f"identity {s.identity:.3f}",
            f"loop seam {s.loop_seam:.3f}",
            f"flicker {s.flicker:.3f}",
            f"motion {s.motion:.2f}%",
        ]
        for k, line in enumerate(lines):
            colour = FLAG if row.flagged and k == 1 else TEXT
            _text(sheet, line, GAP + 2, top + 4 + 16 * k, colour)
        for c, (frame_index, thumb) in enumerate(thumbs):
            left = LABEL_WIDTH + GAP + c * (thumb_w + GAP)
            cell = thumb[:, :thumb_w]
            sheet[top : top + cell.shape[0], left : left + cell.shape[1]] = cell
            label = f"frame {frame_index}" + (" (blink)" if frame_index == row.blink_peak else "")
            _text(sheet, label, left + 2, top + THUMB_HEIGHT + 1, TEXT)
    write_atomically(path, _png(sheet))  # a run stopped half-way: no truncated sheet
    return path


def _text(
    sheet: NDArray[np.uint8], text: str, left: int, top: int, colour: tuple[int, int, int]
) -> None:
    """``text`` on ``sheet`` with its top-left corner at (``left``, ``top``) pixels: OpenCV's
    Hershey sans-serif at ~11 px line height, anti-aliased."""
    cv2.putText(
        sheet,
        text,
        (left, top + TEXT_BASELINE),
        cv2.FONT_HERSHEY_SIMPLEX,
        TEXT_SCALE,
        colour,
        1,
        cv2.LINE_AA,
    )


def _png(rgb: NDArray[np.uint8]) -> bytes:
    """``rgb`` as PNG at zlib level 1 with libpng's "up" filter on every row: about 40 % less
    time than Pillow's level 1 (which tries every filter on every row), the file ~3 % bigger.
    The sheet is written last, when every other part of the job is done."""
    ok, encoded = cv2.imencode(
        ".png",
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP],
    )
    if not ok:
        raise OSError("could not encode the contact sheet as PNG")
    return encoded.tobytes()
