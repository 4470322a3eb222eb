"""Every user-facing text of the bots, in one place (plain text, no markup, platform-neutral)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType

from moderation.consent import CONSENT_VERSION, CONSENT_WORDING

CONSENT_WORDING_VERSION = CONSENT_VERSION  # the ledger accepts only the current wording

HOW_TO_SEND: Mapping[str, str] = MappingProxyType(
    {
        "telegram": (
            "Send a photo with the caption /animate and the motion you want, for example:\n"
            "/animate subtle blink, slight head tilt\n"
            "You can also reply /animate <motion> to a photo, or (in a private chat) just send "
            "a photo and I will ask for the motion. Photos sent as files work too."
        ),
        "discord": (
            "Use the slash command /animate photo:<your photo> motion:<the motion>, for example "
            "/animate photo:face.jpg motion:subtle blink, slight head tilt "
            "(optional: variations:1-6 and seconds:2-5, for that request only).\n"
            "Or mention me in a message with the photo attached and the motion as its text; "
            "in a DM just send the photo (with or without the motion)."
        ),
    }
)
_HOW_TO_SEND_DEFAULT = "Send a photo together with the motion you want, e.g. 'subtle blink'."

_HELP_TIPS = (
    "What works best:\n"
    "- one sharp, front-facing, well-lit face, cropped tight;\n"
    "- one subtle motion (a blink, a small tilt, gentle breathing), not big gestures;\n"
    "- 2–4 second loops (longer clips drift).\n"
    "\n"
    "You get a few takes: pick the most natural one, or ask for a re-roll, less or more motion.\n"
    "Clips are AI-generated and labelled as synthetic. Photos are kept briefly, never shared, "
    "and /forget deletes everything about you.\n"
    "\n"
    "/settings: your defaults · /consent: your consent record · /forget: delete your data"
)


def help_text(platform: str) -> str:
    """/start and /help: what to send, what works best, and the other commands."""
    how = HOW_TO_SEND.get(platform, _HOW_TO_SEND_DEFAULT)
    return f"I turn one photo into a short looping clip.\n\n{how}\n\n{_HELP_TIPS}"


def need_photo(platform: str) -> str:
    """The answer to a request without a photo."""
    return "I need a photo to animate. " + HOW_TO_SEND.get(platform, _HOW_TO_SEND_DEFAULT)


CONSENT_QUESTION = CONSENT_WORDING  # shown verbatim: the ledger records this wording
CONSENT_YES = "✅ I confirm"
CONSENT_NO = "✖ Cancel"
CONSENT_DECLINED = (
    "No problem — nothing was generated and your photo is not kept. "
    "Send it again whenever you have permission."
)
CONSENT_RECORDED = "Thanks, consent recorded. Starting…"
CONSENT_SHOW_YES = "Consent on record (given {at}). Revoke it with the button below."
CONSENT_SHOW_NO = "You have no consent on record. I will ask the next time you send a photo."
CONSENT_REVOKE = "Revoke consent"
CONSENT_REVOKED = "Consent revoked. I will ask again before animating a photo of a person."

ASK_MOTION = (
    "Nice photo. What motion should it have? Reply with one subtle motion, for example: "
    "subtle blink, slight head tilt."
)
NEED_MOTION: Mapping[str, str] = MappingProxyType(
    {
        "telegram": (
            "Add the motion after /animate, for example: /animate gentle breathing, slow blink."
        ),
        "discord": (
            "Add the motion: mention me with the photo and the motion as the message text, or "
            "use /animate photo:<your photo> motion:gentle breathing, slow blink."
        ),
    }
)


def need_motion(platform: str) -> str:
    """The answer to a photo that came without a motion where the flow cannot ask for one."""
    return NEED_MOTION.get(platform, "Add the motion you want, e.g. 'gentle breathing'.")


NOT_IMAGE = "That file is not an image. Send a JPEG, PNG, WebP, HEIC or AVIF photo (as a photo or as a file)."
TOO_LARGE = "That photo is larger than {limit_mb} MB, which is more than I can download. Send a smaller one."
EXPIRED = "This request has expired. Send the photo again to start over."
NOT_YOURS = "Only the person who asked can use these buttons. React to a take to vote for it."
PICK_RECORDED = "Take {k} picked."
VOTE_RECORDED = "Vote for take {k} counted."
STARTED_CHILD = "{what} on its way."
SERVICE_DOWN = (
    "The animation service is not reachable right now. Please try again in a few minutes."
)
FAILED = "Sorry, this one failed: {reason}. Try a sharper photo or a simpler motion."
CANCELLED = "This request was cancelled."
DELIVERY_FAILED = "Sorry, I could not deliver these clips. Please send the photo again."


def undeliverable(reason: str) -> str:
    """The clips were made but can never be sent here (e.g. too large for this channel)."""
    return (
        f"Sorry, I could not send these clips: {reason.rstrip('.')}. "
        "Try fewer takes or shorter seconds, or ask me in a DM."
    )


ADJUST_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "reroll": "A re-roll",
        "less": "A calmer version",
        "more": "A livelier version",
        "vary": "Variations of take {k}",
    }
)


def queued(position: int) -> str:
    if position <= 1:
        return "⏳ Queued — you are next."
    return f"⏳ Queued — position {position} in line."


def running(progress: float) -> str:
    percent = max(0, min(100, round(progress * 100)))
    filled = percent // 10
    return f"🎞 Animating… {percent}% {'▰' * filled}{'▱' * (10 - filled)}"


def done(count: int) -> str:
    return f"✅ Done — {count} takes below."


def refused(message: str, suggestion: str = "") -> str:
    """A polite refusal: why (the service's one-line reason) and what to try instead."""
    match = _REFUSED_PREFIX.match(message)
    reason = message[match.end() :] if match else message
    head = (
        f"Sorry, I can't animate that ({match.group(1)})"
        if match
        else "Sorry, I can't animate that"
    )
    try_instead = suggestion or (
        "You can try a gentle, natural motion instead — a blink, a small smile, "
        "a slight head tilt or soft breathing."
    )
    if try_instead in reason:
        return f"{head}: {reason.strip()}"
    return f"{head}: {reason.strip().rstrip('.')}.\n{try_instead}"


_REFUSED_PREFIX = re.compile(r"^\s*refused\s*\(([^)]{1,60})\)\s*:\s*", re.IGNORECASE)


def rate_limited(retry_after_s: float, queue_full: bool) -> str:
    wait = _duration(retry_after_s)
    if queue_full:
        return f"The queue is full right now. Please try again in {wait}."
    return f"You have sent a lot of requests. Please try again in {wait}."


def bad_request(message: str) -> str:
    return f"I can't use that: {message.rstrip('.')}."


def caption(k: int, scores: Mapping[str, float], *, final: bool = False, best: bool = False) -> str:
    """'Take 2 · likeness ●●●●○ · loop ●●●●●' from the service's quality scores."""
    head = f"⭐ Final — take {k}" if final else f"Take {k}"
    parts = [head + (" (best scores)" if best else "")]
    if "identity" in scores:
        parts.append(f"likeness {_dots(scores['identity'])}")
    if "loop_seam" in scores:
        parts.append(f"loop {_dots(1.0 - min(1.0, scores['loop_seam']))}")
    return " · ".join(parts) + "\nAI-generated clip."


def keyboard_text(count: int, group: bool, vote_window_s: float) -> str:
    text = f"Pick your favourite of the {count} takes, or ask for another round."
    if group:
        text += f" Others can vote by reacting to a take for {_duration(vote_window_s)}."
    return text


def pick_label(k: int) -> str:
    return f"Pick {k}"


def vary_label(k: int) -> str:
    return f"🎲 Vary {k}"


REROLL = "🔁 Re-roll"
LESS = "➖ Less motion"
MORE = "➕ More motion"


def vote_result(k: int, votes: int) -> str:
    return f"The vote is in: take {k} wins with {votes} vote{'s' if votes != 1 else ''}."


_SETTINGS_COMMAND: Mapping[str, str] = MappingProxyType(
    {"telegram": "/settings", "discord": "/settings change:"}
)


def _settings_usage(platform: str, joiner: str) -> str:
    command = _SETTINGS_COMMAND.get(platform, "/settings")
    return joiner.join(
        f"{command}{'' if command.endswith(':') else ' '}{change}"
        for change in ("variations 1-6", "seconds 2-5", "motion subtle|normal|strong")
    )


def settings_summary(variations: int, seconds: float, motion: str, platform: str) -> str:
    return (
        f"Your defaults: {variations} takes, {seconds:g} s, {motion} motion.\n"
        f"Change with: {_settings_usage(platform, ' · ')}"
    )


def settings_bad(platform: str) -> str:
    return f"I did not understand that. Use {_settings_usage(platform, ', ')}."


def forgot(jobs: int, files: int, consent_records: int, bot_items: int) -> str:
    """What /forget deleted, in one line."""
    items = [
        _count(jobs, "request"),
        _count(files, "stored file"),
        _count(consent_records, "consent record"),
    ]
    deleted = [item for item, n in zip(items, (jobs, files, consent_records), strict=True) if n]
    if bot_items:
        deleted.append(f"{_count(bot_items, 'item')} the bot remembered")
    if not deleted:
        return "Done. I had nothing stored about you."
    return "Done. Deleted " + ", ".join(deleted) + ". Nothing about you is kept."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _dots(value: float) -> str:
    filled = max(0, min(5, round(value * 5)))
    return "●" * filled + "○" * (5 - filled)


def _duration(seconds: float) -> str:
    seconds = max(1.0, seconds)
    if seconds < 90:
        return f"{math.ceil(seconds)} seconds"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    return f"{math.ceil(minutes / 60)} hours"
