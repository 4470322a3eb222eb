"""Structured, redacted logging for every ``livingphoto`` process.

Usage::

    configure_from_env(load_environ(os.environ))     # format, level and secrets from the env
    # or, explicitly:
    settings = LoggingSettings.from_env(env)
    configure_logging(settings.json_lines, settings.level, secrets=(bot_token, service_token))
    log = logging.getLogger(__name__)
    with job_context(job_id):
        log.info("rendering")            # carries job_id
    log.info("done", extra={"job_id": job_id})   # explicit job_id wins

Two output formats, chosen with ``LIVINGPHOTO_LOG_FORMAT``: ``text`` (one human line per record) and
``json`` (one JSON object per line: ``ts``, ``level``, ``logger``, ``message``, ``job_id`` when known,
any other ``extra`` fields, ``exc`` for exceptions). Every record passes a :class:`RedactionFilter`
first: bot tokens, bearer tokens, ``Authorization`` values, the configured secrets and long base64 runs
are replaced, and bytes are never written out, only their length.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TextIO

from livingphoto.env import env_str
from livingphoto.errors import UsageError

LOG_FORMATS = ("text", "json")
# Secrets a process may hold: their exact values are redacted wherever they appear.
SECRET_ENV_VARS = (
    "LIVINGPHOTO_SERVICE_TOKEN",
    "TELEGRAM_BOT_TOKEN",
    "DISCORD_BOT_TOKEN",
    "HF_TOKEN",
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REDACTED = "[REDACTED]"

# The job a piece of code is working for; set with ``job_context``. A ContextVar, not a global:
# every asyncio task and thread sees its own value.
_JOB_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "livingphoto_job_id", default=None
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}

# Libraries that log full request URLs (python-telegram-bot's httpx puts the bot token in the path)
# are kept at WARNING unless the operator asks for DEBUG.
_NOISY_LOGGERS = ("httpx", "httpcore", "discord.http", "discord.gateway", "aiohttp.access")

# Each pattern keeps group 1 (the label, if any) and replaces the rest with ``[REDACTED]``.
_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Authorization header values and bearer tokens, whatever the token looks like.
    re.compile(r"(?i)(\bbearer\s+)(?!\[REDACTED)[^\s'\",;]{8,}"),
    re.compile(
        r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|bot)\s+)?)(?!\[REDACTED|bearer\s|bot\s)[^\s'\",;]+"
    ),
    # Telegram bot tokens: <bot id>:<35 characters>, also inside api.telegram.org/bot<token>/ URLs.
    re.compile(r"()(?<![0-9])\d{5,12}:[A-Za-z0-9_-]{30,}"),
    # Discord bot tokens: three base64url parts separated by dots.
    re.compile(r"()(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"),
    # Passwords in URLs: redis://:PASSWORD@host, https://user:PASSWORD@host.
    re.compile(r"(://[^/\s:@]*:)(?!\[REDACTED)[^@\s/]+(?=@)"),
    # token=… / secret=… / password=… in query strings and key=value logs.
    re.compile(
        r"(?i)((?:^|[?&\s\"'])(?:[a-z_]*token|secret|password|api_key)[\"']?\s*[=:]\s*[\"']?)(?!\[REDACTED)[^\s&'\",;]+"
    ),
)
# Long base64/hex runs are file contents (photos, clips), never something an operator needs.
_BLOB = re.compile(r"[A-Za-z0-9+/=_-]{200,}")


def current_job_id() -> str | None:
    """The job id set by the innermost :func:`job_context`, if any."""
    return _JOB_ID.get()


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Attach ``job_id`` to every record logged inside the block (and tasks started from it)."""
    token = _JOB_ID.set(job_id)
    try:
        yield
    finally:
        _JOB_ID.reset(token)


@dataclass(frozen=True)
class LoggingSettings:
    """How a process logs. Aggregated in ``livingphoto.settings`` next to the package settings."""

    format: str = "text"  # LIVINGPHOTO_LOG_FORMAT: text | json
    level: str = "INFO"  # LIVINGPHOTO_LOG_LEVEL: DEBUG | INFO | WARNING | ERROR | CRITICAL

    ENV_VARS: ClassVar[Mapping[str, str]] = {
        "format": "LIVINGPHOTO_LOG_FORMAT",
        "level": "LIVINGPHOTO_LOG_LEVEL",
    }

    @property
    def json_lines(self) -> bool:
        return self.format == "json"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LoggingSettings:
        fmt = env_str(env, "LIVINGPHOTO_LOG_FORMAT", cls.format).lower()
        if fmt not in LOG_FORMATS:
            raise UsageError(f"LIVINGPHOTO_LOG_FORMAT must be text or json, got {fmt!r}")
        level = _checked_level(
            env_str(env, "LIVINGPHOTO_LOG_LEVEL", cls.level), "LIVINGPHOTO_LOG_LEVEL"
        )
        return cls(format=fmt, level=level)


def _checked_level(raw: str, what: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise UsageError(f"{what} must be one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return level


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known secrets, token-shaped strings and blobs replaced by ``[REDACTED]``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return _BLOB.sub(lambda m: f"[{len(m.group(0))} chars redacted]", text)


_SECRET_KEY = re.compile(r"(?i)token|secret|password|authorization|api_key|cookie")


def _describe_bytes(value: bytes | bytearray | memoryview) -> str:
    return f"<{value.nbytes if isinstance(value, memoryview) else len(value)} bytes>"


@dataclass(frozen=True)
class _BytesSummary:
    """Stands in for a bytes argument: ``%s`` and ``%r`` both print only the length."""

    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def _safe_value(value: object, secrets: tuple[str, ...]) -> object:
    """A JSON-friendly, redacted copy of an ``extra`` value; bytes become their length."""
    if isinstance(value, bytes | bytearray | memoryview):
        return _describe_bytes(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _SECRET_KEY.search(str(k)) else _safe_value(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_safe_value(v, secrets) for v in value]
    return redact(str(value), secrets)


def _safe_arg(value: object) -> object:
    """A %-format argument with bytes replaced by their length (redaction happens after formatting)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return _BytesSummary(_describe_bytes(value))
    return value


class RedactionFilter(logging.Filter):
    """Rewrites each record in place so that no handler can emit a secret or raw bytes.

    The message is formatted once, redacted and stored without arguments; exception text and
    ``extra`` values are redacted too. ``secrets`` are exact strings (the configured tokens).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first so a secret that contains another is replaced whole.
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(self._message(record), self._secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        record.exc_info = None  # the redacted exc_text is what formatters print
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        for key, value in list(vars(record).items()):
            if key in _RECORD_ATTRS:
                continue
            safe = REDACTED if _SECRET_KEY.search(key) else _safe_value(value, self._secrets)
            setattr(record, key, safe)
        return True

    @staticmethod
    def _message(record: logging.LogRecord) -> str:
        msg: object = record.msg
        if isinstance(msg, bytes | bytearray | memoryview):
            return _describe_bytes(msg)
        args = record.args
        if not args:
            return str(msg)
        try:
            if isinstance(args, Mapping):
                return str(msg) % {k: _safe_arg(v) for k, v in args.items()}
            return str(msg) % tuple(_safe_arg(a) for a in args)
        except (TypeError, ValueError, KeyError):
            return f"{msg} (unformattable log arguments)"


class JobContextFilter(logging.Filter):
    """Sets ``record.job_id`` from :func:`job_context` unless the caller passed one in ``extra``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = _JOB_ID.get()
        return True


def _timestamp(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line; keys: ts, level, logger, message, job_id, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None)
        if job_id is not None:
            entry["job_id"] = str(job_id)
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key != "job_id" and key not in entry:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2026-01-01T12:00:00.000Z INFO logger [job_id] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(job_tag)s %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _timestamp(record)

    def format(self, record: logging.LogRecord) -> str:
        job_id = getattr(record, "job_id", None)
        record.job_tag = f" [{job_id}]" if job_id is not None else ""
        return super().format(record)


class _LivingPhotoHandler(logging.StreamHandler[TextIO]):
    """Marks the handler ``configure_logging`` installed, so calling it again replaces it."""


def configure_logging(
    json_lines: bool,
    level: str,
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record of the process to ``stream`` (stderr), redacted, as text or JSON lines.

    Replaces a handler installed by an earlier call; leaves other handlers alone. ``level`` is a
    level name (``LIVINGPHOTO_LOG_LEVEL``); an unknown one raises ``UsageError``. Returns the handler.
    """
    checked = _checked_level(level, "log level")
    handler = _LivingPhotoHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(JobContextFilter())
    handler.addFilter(RedactionFilter(secrets))
    handler.setFormatter(JsonLinesFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _LivingPhotoHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(checked)
    quiet = logging.DEBUG if checked == "DEBUG" else logging.WARNING
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    return handler


def configure_from_env(env: Mapping[str, str], stream: TextIO | None = None) -> logging.Handler:
    """``configure_logging`` from ``LIVINGPHOTO_LOG_FORMAT``/``LIVINGPHOTO_LOG_LEVEL``, with the
    values of ``SECRET_ENV_VARS`` found in ``env`` as secrets. One call at process start-up."""
    settings = LoggingSettings.from_env(env)
    secrets = [env.get(name, "").strip() for name in SECRET_ENV_VARS]
    return configure_logging(settings.json_lines, settings.level, secrets=secrets, stream=stream)
