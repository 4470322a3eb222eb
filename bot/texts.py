"""Every user-facing text of the bots, in one place (plain text, no markup, platform-neutral).

The English texts below are the gettext message ids; ``bot/locale/<lang>/LC_MESSAGES/
livingphoto.po`` translate them (see ``bot.i18n``). ``Texts(language)`` gives them in one
language; the flow picks the language per user and chat. Placeholders are ``str.format`` names
(``{k}``, ``{limit_mb}``...) and must appear unchanged in every translation.

Usage::

    t = Texts("es")
    t.help_text("telegram"); t.consent_yes; t.queued(3)
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence

from bot.i18n import DEFAULT_LANGUAGE, catalogue, language_name
from moderation.consent import CONSENT_VERSION, CONSENT_WORDING

CONSENT_WORDING_VERSION = CONSENT_VERSION  # the ledger accepts only the current wording

_REFUSED_PREFIX = re.compile(r"^\s*refused\s*\(([^)]{1,60})\)\s*:\s*", re.IGNORECASE)
_SETTINGS_COMMAND: Mapping[str, str] = {"telegram": "/settings", "discord": "/settings change:"}


class Texts:
    """The bots' texts in one language (``language``: a code of ``bot.i18n.LANGUAGES``)."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        translations = catalogue(language)
        self.language = language
        self._ = translations.gettext
        self.ngettext = translations.ngettext
        _ = self._
        self.consent_question = _(CONSENT_WORDING)  # shown verbatim: the ledger records it
        self.consent_yes = _("✅ I confirm")
        self.consent_no = _("✖ Cancel")
        self.consent_declined = _(
            "No problem — nothing was generated and your photo is not kept. "
            "Send it again whenever you have permission."
        )
        self.consent_recorded = _("Thanks, consent recorded. Starting…")
        self.consent_show_no = _(
            "You have no consent on record. I will ask the next time you send a photo of a person."
        )
        self.consent_revoke = _("Revoke consent")
        self.consent_revoked = _(
            "Consent revoked. I will ask again before animating a photo of a person."
        )
        self.ask_motion = _(
            "Nice photo. What motion should it have? Reply with one subtle motion, for example: "
            "subtle blink, slight head tilt."
        )
        self.not_image = _(
            "That file is not an image. Send a JPEG, PNG, WebP, HEIC or AVIF photo (as a photo "
            "or as a file)."
        )
        self.expired = _("This request has expired. Send the photo again to start over.")
        self.not_yours = _(
            "Only the person who asked can use these buttons. React to a take to vote for it."
        )
        self.service_down = _(
            "The animation service is not reachable right now. Please try again in a few minutes."
        )
        self.cancelled = _("This request was cancelled.")
        self.delivery_failed = _(
            "Sorry, I could not deliver these clips. Please send the photo again."
        )
        self.reroll = _("🔁 Re-roll")
        self.less = _("➖ Less motion")
        self.more = _("➕ More motion")
        self.admin_only = _("Only an admin of this chat can change its language.")

    def command_descriptions(self) -> dict[str, str]:
        """Command name -> its one-line description (Telegram's menu; Discord's translator
        looks the same English texts up in the catalogues)."""
        _ = self._
        return {
            "animate": _("Animate a photo into a short looping clip"),
            "settings": _("Your defaults: takes, seconds, motion, language"),
            "consent": _("See or revoke your consent record"),
            "forget": _("Delete your photos, clips and consent record"),
            "help": _("How to get the best clips"),
        }

    # -- help ------------------------------------------------------------------------------
    def how_to_send(self, platform: str) -> str:
        _ = self._
        if platform == "telegram":
            return _(
                "Send a photo with the caption /animate and the motion you want, for example:\n"
                "/animate subtle blink, slight head tilt\n"
                "You can also reply /animate <motion> to a photo, or (in a private chat) just send "
                "a photo and I will ask for the motion. Photos sent as files work too."
            )
        if platform == "discord":
            return _(
                "Use the slash command /animate photo:<your photo> motion:<the motion>, for "
                "example /animate photo:face.jpg motion:subtle blink, slight head tilt "
                "(optional: variations:1-6 and seconds:2-5, for that request only).\n"
                "Or mention me in a message with the photo attached and the motion as its text; "
                "in a DM just send the photo (with or without the motion)."
            )
        return _("Send a photo together with the motion you want, e.g. 'subtle blink'.")

    def help_text(self, platform: str) -> str:
        """/start and /help: what to send, what works best, and the other commands."""
        _ = self._
        intro = _("I turn one photo into a short looping clip.")
        tips = _(
            "What works best:\n"
            "- one sharp, front-facing, well-lit face, cropped tight;\n"
            "- one subtle motion (a blink, a small tilt, gentle breathing), not big gestures;\n"
            "- 2–4 second loops (longer clips drift).\n"
            "\n"
            "You get a few takes: pick the most natural one, or ask for a re-roll, less or more "
            "motion.\n"
            "Clips are AI-generated and labelled as synthetic. Photos are kept briefly, never "
            "shared, and /forget deletes everything about you.\n"
            "\n"
            "/settings: your defaults and language · /consent: your consent record · "
            "/forget: delete your data"
        )
        return f"{intro}\n\n{self.how_to_send(platform)}\n\n{tips}"

    def need_photo(self, platform: str) -> str:
        """The answer to a request without a photo."""
        return self._("I need a photo to animate.") + " " + self.how_to_send(platform)

    def need_motion(self, platform: str) -> str:
        """The answer to a photo that came without a motion where the flow cannot ask for one."""
        _ = self._
        if platform == "telegram":
            return _(
                "Add the motion after /animate, for example: /animate gentle breathing, slow blink."
            )
        if platform == "discord":
            return _(
                "Add the motion: mention me with the photo and the motion as the message text, or "
                "use /animate photo:<your photo> motion:gentle breathing, slow blink."
            )
        return _("Add the motion you want, e.g. 'gentle breathing'.")

    # -- consent -------------------------------------------------------------------------------
    def consent_show_yes(self, at: str) -> str:
        """``at``: when it was given (a time, or "" when the service did not say)."""
        if not at:
            return self._("Consent on record. Revoke it with the button below.")
        return self._("Consent on record (given {at}). Revoke it with the button below.").format(
            at=at
        )

    # -- faces ---------------------------------------------------------------------------------
    def face_question(self, count: int) -> str:
        """Asked for a photo with ``count`` >= 2 faces."""
        return self._(
            "I see {n} people in this photo. Clips work best with one person: which one should "
            "move?"
        ).format(n=count)

    def face_label(self, index: int, count: int) -> str:
        """The button of face ``index`` (0-based, left to right) of ``count`` faces."""
        _ = self._
        if count == 2:
            return (_("Left"), _("Right"))[index]
        if count == 3:
            return (_("Left"), _("Middle"), _("Right"))[index]
        return _("Person {k} (from the left)").format(k=index + 1)

    def face_chosen(self, label: str) -> str:
        return self._("Animating: {face}.").format(face=label)

    # -- files and requests -------------------------------------------------------------------
    def too_large(self, limit_mb: int) -> str:
        return self._(
            "That photo is larger than {limit_mb} MB, which is more than I can download. "
            "Send a smaller one."
        ).format(limit_mb=limit_mb)

    def pick_recorded(self, k: int) -> str:
        return self._("Take {k} picked.").format(k=k)

    def vote_recorded(self, k: int) -> str:
        return self._("Vote for take {k} counted.").format(k=k)

    def started_child(self, adjust: str, k: int) -> str:
        _ = self._
        if adjust == "less":
            return _("A calmer version is on its way.")
        if adjust == "more":
            return _("A livelier version is on its way.")
        if adjust == "vary":
            return _("Variations of take {k} are on their way.").format(k=k)
        return _("A re-roll is on its way.")

    def failed(self, reason: str) -> str:
        return self._(
            "Sorry, this one failed: {reason}. Try a sharper photo or a simpler motion."
        ).format(reason=reason.rstrip("."))

    def undeliverable(self, reason: str) -> str:
        """The clips were made but can never be sent here (e.g. too large for this channel)."""
        return self._(
            "Sorry, I could not send these clips: {reason}. "
            "Try fewer takes or shorter seconds, or ask me in a DM."
        ).format(reason=reason.rstrip("."))

    def queued(self, position: int) -> str:
        if position <= 1:
            return self._("⏳ Queued — you are next.")
        return self._("⏳ Queued — position {position} in line.").format(position=position)

    def running(self, progress: float) -> str:
        percent = max(0, min(100, round(progress * 100)))
        filled = percent // 10
        bar = "▰" * filled + "▱" * (10 - filled)
        return self._("🎞 Animating… {percent}%").format(percent=percent) + " " + bar

    def done(self, count: int) -> str:
        return self.ngettext(
            "✅ Done — {n} take below.", "✅ Done — {n} takes below.", count
        ).format(n=count)

    def refused(self, message: str, suggestion: str = "", category: str = "") -> str:
        """A polite refusal: why and what to try instead. A known policy ``category`` is said
        in this language; otherwise the service's one-line reason (``message``) is shown."""
        reason = self._category_reason(category)
        if reason is not None:
            return f"{reason}\n{self._category_suggestion(category)}"
        _ = self._
        match = _REFUSED_PREFIX.match(message)
        why = message[match.end() :] if match else message
        head = (
            _("Sorry, I can't animate that ({what})").format(what=match.group(1))
            if match
            else _("Sorry, I can't animate that")
        )
        try_instead = suggestion or self._category_suggestion("")
        if try_instead in why:
            return f"{head}: {why.strip()}"
        return f"{head}: {why.strip().rstrip('.')}.\n{try_instead}"

    def _category_reason(self, category: str) -> str | None:
        _ = self._
        reasons = {
            "sexual_minors": _(
                "Sorry, I can't animate that: nothing sexual involving children or teenagers is "
                "ever made."
            ),
            "sexual": _(
                "Sorry, I can't animate that: I don't undress people or make nude or sexual clips."
            ),
            "violence_gore": _("Sorry, I can't animate that: I don't make violent or gory clips."),
            "self_harm": _(
                "Sorry, I can't animate that: I don't make clips that show self-harm or suicide."
            ),
            "political_deepfake": _(
                "Sorry, I can't animate that: I don't make clips that could pass as real "
                "political events or news footage."
            ),
            "speech_impersonation": _(
                "Sorry, I can't animate that: I don't make real people say, confess or lip-sync "
                "anything."
            ),
            "nsfw_image": _(
                "Sorry, I can't animate that: the photo or the clip looked sexually explicit."
            ),
        }
        return reasons.get(category)

    def _category_suggestion(self, category: str) -> str:
        _ = self._
        suggestions = {
            "sexual_minors": _(
                "You can animate a photo of a child with everyday motion: a smile, a blink, "
                "blowing out birthday candles."
            ),
            "self_harm": _(
                "You can ask for calm motion such as a gentle smile or breathing. If you are "
                "struggling, please talk to someone you trust or a local helpline."
            ),
            "political_deepfake": _(
                "You can ask for neutral motion such as a nod, a smile or a wave; every clip is "
                "labelled as synthetic."
            ),
            "speech_impersonation": _(
                "You can ask for expression without words: a laugh, a smile, a nod or raised "
                "eyebrows."
            ),
            "nsfw_image": _(
                "You can send a different photo, for example a portrait with clothes on."
            ),
        }
        return suggestions.get(category) or _(
            "You can try a gentle, natural motion instead — a blink, a small smile, "
            "a slight head tilt or soft breathing."
        )

    def rate_limited(self, retry_after_s: float, queue_full: bool) -> str:
        wait = self.duration(retry_after_s)
        if queue_full:
            return self._("The queue is full right now. Please try again in {wait}.").format(
                wait=wait
            )
        return self._("You have sent a lot of requests. Please try again in {wait}.").format(
            wait=wait
        )

    def bad_request(self, message: str) -> str:
        return self._("I can't use that: {reason}.").format(reason=message.rstrip("."))

    # -- takes ---------------------------------------------------------------------------------
    def caption(
        self, k: int, scores: Mapping[str, float], *, final: bool = False, best: bool = False
    ) -> str:
        """'Take 2 · likeness ●●●●○ · loop ●●●●●' from the service's quality scores."""
        _ = self._
        head = _("⭐ Final — take {k}").format(k=k) if final else _("Take {k}").format(k=k)
        parts = [head + (" " + _("(best scores)") if best else "")]
        if "identity" in scores:
            parts.append(_("likeness") + " " + _dots(scores["identity"]))
        if "loop_seam" in scores:
            parts.append(_("loop") + " " + _dots(1.0 - min(1.0, scores["loop_seam"])))
        return " · ".join(parts) + "\n" + _("AI-generated clip.")

    def keyboard_text(self, count: int, group: bool, vote_window_s: float) -> str:
        text = self._("Pick your favourite of the {n} takes, or ask for another round.").format(
            n=count
        )
        if group:
            text += " " + self._("Others can vote by reacting to a take for {duration}.").format(
                duration=self.duration(vote_window_s)
            )
        return text

    def pick_label(self, k: int) -> str:
        return self._("Pick {k}").format(k=k)

    def vary_label(self, k: int) -> str:
        return self._("🎲 Vary {k}").format(k=k)

    def vote_result(self, k: int, votes: int) -> str:
        return self.ngettext(
            "The vote is in: take {k} wins with {n} vote.",
            "The vote is in: take {k} wins with {n} votes.",
            votes,
        ).format(k=k, n=votes)

    # -- settings and forget ------------------------------------------------------------------
    def _settings_usage(self, platform: str, joiner: str) -> str:
        command = _SETTINGS_COMMAND.get(platform, "/settings")
        space = "" if command.endswith(":") else " "
        changes = (
            "variations 1-6",
            "seconds 2-5",
            "motion subtle|normal|strong",
            "language en|es|de|fr|pt",
        )
        return joiner.join(f"{command}{space}{change}" for change in changes)

    def settings_summary(
        self, variations: int, seconds: float, motion: str, platform: str, language: str = ""
    ) -> str:
        motion_name = {
            "subtle": self._("subtle"),
            "normal": self._("normal"),
            "strong": self._("strong"),
        }.get(motion, motion)
        summary = self._(
            "Your defaults: {variations} takes, {seconds} s, {motion} motion, language: {language}."
        ).format(
            variations=variations,
            seconds=f"{seconds:g}",
            motion=motion_name,
            language=language_name(language or self.language),
        )
        usage = self._settings_usage(platform, " · ")
        return summary + "\n" + self._("Change with: {usage}").format(usage=usage)

    def settings_bad(self, platform: str) -> str:
        return self._("I did not understand that. Use {usage}.").format(
            usage=self._settings_usage(platform, ", ")
        )

    def language_set(self, language: str) -> str:
        return self._("From now on I will write to you in {language}.").format(
            language=language_name(language)
        )

    def chat_language_set(self, language: str) -> str:
        return self._(
            "This chat's default language is now {language}. "
            "Anyone can still choose their own with /settings language."
        ).format(language=language_name(language))

    def language_unknown(self, code: str, available: Sequence[str]) -> str:
        return self._("I don't speak {code} yet. Choose one of: {languages}.").format(
            code=code, languages=", ".join(available)
        )

    def forgot(self, jobs: int, files: int, consent_records: int, bot_items: int) -> str:
        """What /forget deleted, in one line."""
        parts = [
            (jobs, self.ngettext("{n} request", "{n} requests", jobs)),
            (files, self.ngettext("{n} stored file", "{n} stored files", files)),
            (
                consent_records,
                self.ngettext("{n} consent record", "{n} consent records", consent_records),
            ),
            (
                bot_items,
                self.ngettext(
                    "{n} item the bot remembered", "{n} items the bot remembered", bot_items
                ),
            ),
        ]
        deleted = [text.format(n=count) for count, text in parts if count]
        if not deleted:
            return self._("Done. I had nothing stored about you.")
        return self._("Done. Deleted {items}. Nothing about you is kept.").format(
            items=", ".join(deleted)
        )

    def duration(self, seconds: float) -> str:
        seconds = max(1.0, seconds)
        if seconds < 90:
            count = math.ceil(seconds)
            return self.ngettext("{n} second", "{n} seconds", count).format(n=count)
        minutes = math.ceil(seconds / 60)
        if minutes < 90:
            return self.ngettext("{n} minute", "{n} minutes", minutes).format(n=minutes)
        hours = math.ceil(minutes / 60)
        return self.ngettext("{n} hour", "{n} hours", hours).format(n=hours)


def _dots(value: float) -> str:
    filled = max(0, min(5, round(value * 5)))
    return "●" * filled + "○" * (5 - filled)


@functools.cache
def for_language(language: str) -> Texts:
    """The (shared, read-only) texts of one of ``bot.i18n.LANGUAGES``."""
    return Texts(language)


ENGLISH = for_language(DEFAULT_LANGUAGE)
CONSENT_YES = ENGLISH.consent_yes  # the English button label (older callers and tests)
