"""The CLI's moderation check (prompt policy, NSFW check of the photo, audit), in-process or in a
helper process that loads it beside the CLI's own start-up.

``livingphoto animate`` checks one request per run, and what that check needs (the moderation
package, onnxruntime, the prompt policy, the NSFW model: about 0.25 s of one core) would compete
with the photo's decoding, face detection and first frames for the GIL. ``CheckProcess`` runs
the same ``CliModeration`` in a child process started first thing, on the core the CLI's
single-threaded start-up leaves idle. On Linux, while the CLI still runs one thread, the child is
forked (``livingphoto.helper_process.fork_helper``): it starts with the interpreter and the
modules already loaded, which halves its CPU time; elsewhere it is a fresh
``python -m moderation.cli_check``:

    with CheckProcess(data_dir).start() as check:   # the child imports and loads at once
        ...                                          # decode the photo, find its face
        check.submit(prompt, rgb)                    # the decoded pixels, never the file again
        check.verdict()                              # returns when allowed; raises the refusal

Protocol (both ends here): the parent writes one JSON line ``{"prompt", "height", "width"}`` and
then ``height * width * 3`` bytes (RGB, uint8, row-major); the child answers one JSON line,
``{"allowed": true}`` or ``{"error": <LivingPhotoError class name>, "message", "category",
"rule", "suggestion", "retry_after_s"}``, and exits. When the child cannot answer (it failed to
start, died, or wrote something else) ``verdict`` raises ``CheckUnavailable``; the caller then
runs ``CliModeration`` in-process, so a request is never let through unchecked.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from livingphoto.errors import (
    ConsentRequired,
    LivingPhotoError,
    PolicyRefusal,
    RateLimited,
    UsageError,
)
from livingphoto.helper_process import (
    ClosedOnExit,
    ForkedHelper,
    Helper,
    can_fork,
    fork_helper,
    start_helper,
    stop_helper,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from moderation.config import ModerationSettings
    from moderation.nsfw import NsfwDetector
    from moderation.policy import PromptPolicy

MAX_ANSWER_BYTES = 64 * 1024
# The photo the check sees is at most this long: the NSFW model looks at 224 px of it, and a
# phone photo (12-48 MP) would otherwise cross the pipe and be resized in full.
CHECK_LONG_SIDE = 1024


def moderation_copy(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``image`` (H, W, 3 RGB uint8) as the check sees it: itself, or a copy at most
    ``CHECK_LONG_SIDE`` pixels long (area interpolation) when it is bigger."""
    from livingphoto.resample import shrink

    height, width = image.shape[:2]
    scale = CHECK_LONG_SIDE / max(height, width)
    if scale >= 1.0:
        return image
    return shrink(image, (max(1, round(width * scale)), max(1, round(height * scale))))


class CheckUnavailable(RuntimeError):
    """The helper process gave no verdict (not started, gone, or an unreadable answer)."""


@dataclass(frozen=True)
class CliModeration:
    """What the CLI's check loads once: settings, the prompt policy and the NSFW model."""

    settings: ModerationSettings
    policy: PromptPolicy
    detector: NsfwDetector

    @classmethod
    def load(cls) -> CliModeration:
        """Moderation settings from the environment (and ``.env``), the prompt policy and the
        NSFW model built for one photo (``quick_start``). Raises ``UsageError`` on bad settings."""
        import os

        from livingphoto.env import load_environ
        from moderation.config import ModerationSettings
        from moderation.nsfw import load_detector
        from moderation.policy import PromptPolicy

        settings = ModerationSettings.from_env(load_environ(os.environ, None))
        policy = PromptPolicy.from_settings(settings)
        return cls(settings, policy, load_detector(settings.nsfw_detector, quick_start=True))

    def check(self, prompt: str, image: NDArray[np.uint8], data_dir: Path) -> None:
        """The moderation gate on this request, as the service runs it (prompt policy, NSFW
        check of the photo, audit log in ``data_dir``). ``--consent`` is the operator's
        attestation for this one photo and is checked by the CLI itself, not looked up in the
        consent ledger. Raises ``PolicyRefusal`` (or ``UsageError``, ``RateLimited``)."""
        from moderation.gate import ModerationRequest, Moderator
        from moderation.requester import Requester

        with Moderator.open(
            self.settings, data_dir, detector=self.detector, policy=self.policy
        ) as moderator:
            moderator.check_request(
                ModerationRequest(
                    requester=Requester("cli", "operator"),
                    prompt=prompt,
                    image=image,
                    shows_person=False,  # consent was checked by the CLI, for this photo
                )
            )


class CheckProcess(ClosedOnExit):
    """``CliModeration`` in a child process (see the module docstring). One request per child."""

    def __init__(self, data_dir: Path, *, fork: bool | None = None) -> None:
        """``fork``: start the child with ``os.fork`` (True), as a fresh interpreter (False), or
        fork whenever that is safe (None, ``livingphoto.helper_process.can_fork``)."""
        self.data_dir = data_dir
        self.fork = fork
        self._process: Helper | None = None
        self._writer: threading.Thread | None = None

    @property
    def forked(self) -> bool:
        """Whether the running child was forked from this process (it shares its imports)."""
        return isinstance(self._process, ForkedHelper)

    def start(self) -> CheckProcess:
        """Start the child, which imports and loads at once; returns ``self``. A forked child
        inherits the modules imported so far (start it once numpy and Pillow are, and before
        any thread). A failure to start shows later, as ``CheckUnavailable`` from ``verdict``."""
        fork = can_fork() if self.fork is None else self.fork
        with contextlib.suppress(OSError):
            if fork:
                self._process = fork_helper(functools.partial(serve, str(self.data_dir)))
            else:
                self._process = start_helper("moderation.cli_check", str(self.data_dir))
        return self

    def submit(self, prompt: str, image: NDArray[np.uint8]) -> None:
        """Send the request: the prompt and the decoded photo, (H, W, 3) RGB uint8. The pixels
        are written by a thread of their own: the child reads them only once it has loaded."""
        import numpy as np

        process = self._process
        if process is None or process.stdin is None or self._writer is not None:
            return
        pixels = np.ascontiguousarray(image, dtype=np.uint8)
        height, width = pixels.shape[:2]
        header = json.dumps({"prompt": prompt, "height": height, "width": width})
        stdin = process.stdin

        def write() -> None:
            try:
                stdin.write(header.encode("utf-8") + b"\n")
                stdin.write(pixels.data)
                stdin.close()
            except (OSError, ValueError):
                pass  # the child is gone: verdict() says so

        self._writer = threading.Thread(target=write, name="lp-moderation-send", daemon=True)
        self._writer.start()

    def verdict(self) -> None:
        """Wait for the child's answer: return when the request is allowed, raise its refusal.

        Raises ``CheckUnavailable`` when there is no answer to trust."""
        process = self._process
        if process is None or self._writer is None or process.stdout is None:
            raise CheckUnavailable("the moderation process did not start")
        self._writer.join()
        try:
            answer = process.stdout.read(MAX_ANSWER_BYTES)
            process.wait()
        except (OSError, ValueError) as error:
            raise CheckUnavailable(f"the moderation process failed: {error}") from None
        try:
            reply: Any = json.loads(answer.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise CheckUnavailable(
                f"the moderation process gave no verdict (exit {process.returncode})"
            ) from None
        if not isinstance(reply, dict):
            raise CheckUnavailable("the moderation process gave no verdict")
        if reply.get("allowed") is True:
            return
        raise _error_from(reply)

    def close(self) -> None:
        """Stop the child if it is still running (idempotent)."""
        stop_helper(self._process)
        if self._writer is not None:
            self._writer.join()  # the child is gone: its write has ended


def _error_to(error: LivingPhotoError) -> dict[str, Any]:
    return {
        "error": type(error).__name__,
        "message": str(error),
        "category": getattr(error, "category", ""),
        "rule": getattr(error, "rule", ""),
        "suggestion": getattr(error, "suggestion", ""),
        "retry_after_s": getattr(error, "retry_after_s", 0.0),
    }


def _error_from(reply: dict[str, Any]) -> LivingPhotoError | CheckUnavailable:
    """The refusal the child reported; anything unknown is ``CheckUnavailable``."""
    kind, message = reply.get("error"), str(reply.get("message", ""))
    if kind == "PolicyRefusal":
        return PolicyRefusal(
            str(reply.get("category", "")),
            message,
            rule=str(reply.get("rule", "")),
            suggestion=str(reply.get("suggestion", "")),
        )
    if kind == "RateLimited":
        return RateLimited(message, float(reply.get("retry_after_s", 0.0)))
    if kind == "UsageError":
        return UsageError(message)
    if kind == "ConsentRequired":
        return ConsentRequired(message)
    return CheckUnavailable(f"the moderation process failed: {message or kind}")


def serve(data_dir: str, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """The child: load the check, read one request from ``stdin``, answer it on ``stdout``
    (exit code 0 once answered, 1 when the parent went away)."""
    import numpy as np

    try:
        moderation = CliModeration.load()
        header = json.loads(stdin.readline().decode("utf-8"))
        height, width = int(header["height"]), int(header["width"])
        data = stdin.read(height * width * 3)
        if len(data) != height * width * 3:
            return 1  # the parent went away
        image = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
        moderation.check(str(header["prompt"]), image, Path(data_dir))
        answer: dict[str, Any] = {"allowed": True}
    except LivingPhotoError as error:
        answer = _error_to(error)
    stdout.write(json.dumps(answer).encode("utf-8") + b"\n")
    stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer))
