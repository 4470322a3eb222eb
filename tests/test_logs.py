"""Structured logging: redaction of secrets and bytes, job ids threaded through contexts and tasks."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from livingphoto.errors import UsageError
from livingphoto.logs import (
    REDACTED,
    LoggingSettings,
    configure_from_env,
    configure_logging,
    current_job_id,
    job_context,
    redact,
)

TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
DISCORD_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0MzI.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789"
SERVICE_TOKEN = "svc-7f3a9c2e"  # short and not token-shaped: only the configured secret catches it


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Route the root logger to a buffer for one test and put everything back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    buf = io.StringIO()
    yield buf
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
    root.setLevel(saved_level)
    for name, level in noisy.items():
        logging.getLogger(name).setLevel(level)


def json_lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_tokens_in_messages_arguments_and_urls_are_redacted(stream: io.StringIO) -> None:
    configure_logging(True, "INFO", secrets=[SERVICE_TOKEN], stream=stream)
    log = logging.getLogger("test.redact")
    log.info("POST https://api.telegram.org/bot%s/getUpdates", TELEGRAM_TOKEN)
    log.info("discord login with %s", DISCORD_TOKEN)
    log.info("headers {'Authorization': 'Bearer %s'}", SERVICE_TOKEN)
    log.info("Authorization: Bot %s", "abcdefghijklmnopqrstuvwxyz")
    log.info("calling service with token=%s&x=1", "q1w2e3r4")
    log.warning("service said %s", SERVICE_TOKEN)
    out = stream.getvalue()
    for secret in (
        TELEGRAM_TOKEN,
        DISCORD_TOKEN,
        SERVICE_TOKEN,
        "abcdefghijklmnopqrstuvwxyz",
        "q1w2e3r4",
    ):
        assert secret not in out
    records = json_lines(stream)
    assert records[0]["message"] == f"POST https://api.telegram.org/bot{REDACTED}/getUpdates"
    assert records[3]["message"] == f"Authorization: Bot {REDACTED}"
    assert len(records) == 6


def test_redaction_keeps_ordinary_sentences() -> None:
    for text in (
        "the bot received a photo from user 42",
        "bearer of good news",
        "job 3f2a finished in 12.5 s at 12:30:01",
        "max_tokens is 77",
        "GET /v1/jobs/3f2a9c0d4e5b6a7f8091a2b3c4d5e6f7/variations/1 200",
        "connecting to redis://redis:6379/0",
    ):
        assert redact(text) == text


def test_passwords_in_urls_are_redacted() -> None:
    assert redact("cannot reach redis://:s3cret-pw@redis:6379/0") == (
        f"cannot reach redis://:{REDACTED}@redis:6379/0"
    )
    assert redact("proxy https://alice:pa55@proxy.local:3128") == (
        f"proxy https://alice:{REDACTED}@proxy.local:3128"
    )


def test_bytes_are_never_emitted(stream: io.StringIO) -> None:
    configure_logging(True, "DEBUG", stream=stream)
    log = logging.getLogger("test.bytes")
    photo = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    log.debug(photo)  # a careless caller
    log.info("upload %r of %s", photo, bytearray(b"abc"))
    log.info("stored", extra={"image": photo, "meta": {"thumb": memoryview(b"xy")}})
    records = json_lines(stream)
    assert records[0]["message"] == f"<{len(photo)} bytes>"
    assert records[1]["message"] == f"upload <{len(photo)} bytes> of <3 bytes>"
    assert records[2]["image"] == f"<{len(photo)} bytes>"
    assert records[2]["meta"] == {"thumb": "<2 bytes>"}
    assert "PNG" not in stream.getvalue()


def test_long_base64_blobs_and_secret_named_extras_are_redacted(stream: io.StringIO) -> None:
    configure_logging(True, "INFO", stream=stream)
    blob = "iVBORw0KGgo" + "A" * 400
    logging.getLogger("test.blob").info(
        "payload %s", blob, extra={"service_token": "short", "headers": {"Authorization": "x"}}
    )
    (record,) = json_lines(stream)
    assert blob not in str(record["message"])
    assert "chars redacted" in str(record["message"])
    assert record["service_token"] == REDACTED
    assert record["headers"] == {"Authorization": REDACTED}


def test_exception_text_is_redacted(stream: io.StringIO) -> None:
    configure_logging(True, "INFO", stream=stream)
    try:
        raise RuntimeError(f"request to /bot{TELEGRAM_TOKEN}/sendAnimation failed")
    except RuntimeError:
        logging.getLogger("test.exc").exception("delivery failed")
    (record,) = json_lines(stream)
    assert "RuntimeError" in str(record["exc"])
    assert TELEGRAM_TOKEN not in stream.getvalue()


def test_job_id_from_context_from_extra_and_nested(stream: io.StringIO) -> None:
    configure_logging(True, "INFO", stream=stream)
    log = logging.getLogger("test.jobs")
    log.info("no job")
    with job_context("job-a"):
        log.info("in a")
        with job_context("job-b"):
            log.info("in b")
        log.info("back in a")
        log.info("explicit", extra={"job_id": "job-x"})
    log.info("after")
    assert current_job_id() is None
    ids = [r.get("job_id") for r in json_lines(stream)]
    assert ids == [None, "job-a", "job-b", "job-a", "job-x", None]


async def test_job_id_follows_each_asyncio_task_and_thread(stream: io.StringIO) -> None:
    configure_logging(True, "INFO", stream=stream)
    log = logging.getLogger("test.tasks")

    async def handle(job_id: str) -> None:
        with job_context(job_id):
            await asyncio.sleep(0)
            log.info("started")
            await asyncio.to_thread(log.info, "rendering in a thread")
            await asyncio.sleep(0)
            log.info("finished")

    await asyncio.gather(handle("j1"), handle("j2"), handle("j3"))
    records = json_lines(stream)
    assert len(records) == 9
    for job_id in ("j1", "j2", "j3"):
        messages = [r["message"] for r in records if r.get("job_id") == job_id]
        assert messages == ["started", "rendering in a thread", "finished"]


def test_text_format_tags_job_id(stream: io.StringIO) -> None:
    configure_logging(False, "INFO", stream=stream)
    with job_context("j-42"):
        logging.getLogger("test.text").info("hello %s", "world")
    line = stream.getvalue().strip()
    assert line.endswith("INFO test.text [j-42] hello world")
    assert line[:4].isdigit() and "Z " in line


def test_configure_twice_replaces_its_handler_and_sets_levels(stream: io.StringIO) -> None:
    first = configure_logging(True, "INFO", stream=io.StringIO())
    second = configure_logging(True, "warning", stream=stream)
    root = logging.getLogger()
    assert first not in root.handlers and second in root.handlers
    assert root.level == logging.WARNING
    assert logging.getLogger("httpx").level == logging.WARNING
    logging.getLogger("test.level").info("dropped")
    logging.getLogger("test.level").error("kept")
    assert [r["message"] for r in json_lines(stream)] == ["kept"]


def test_settings_from_env_defaults_and_values() -> None:
    assert LoggingSettings.from_env({}) == LoggingSettings(format="text", level="INFO")
    settings = LoggingSettings.from_env(
        {"LIVINGPHOTO_LOG_FORMAT": "JSON", "LIVINGPHOTO_LOG_LEVEL": "debug"}
    )
    assert settings.json_lines and settings.level == "DEBUG"
    assert set(LoggingSettings.ENV_VARS.values()) == {
        "LIVINGPHOTO_LOG_FORMAT",
        "LIVINGPHOTO_LOG_LEVEL",
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LIVINGPHOTO_LOG_FORMAT": "xml"}, "LIVINGPHOTO_LOG_FORMAT must be text or json"),
        ({"LIVINGPHOTO_LOG_LEVEL": "loud"}, "LIVINGPHOTO_LOG_LEVEL must be one of"),
    ],
)
def test_bad_settings_are_one_line_usage_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        LoggingSettings.from_env(env)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_configure_rejects_unknown_level() -> None:
    with pytest.raises(UsageError, match="log level must be one of"):
        configure_logging(False, "verbose", stream=io.StringIO())


def test_configure_from_env_redacts_the_configured_tokens(stream: io.StringIO) -> None:
    env = {
        "LIVINGPHOTO_LOG_FORMAT": "json",
        "LIVINGPHOTO_LOG_LEVEL": "debug",
        "LIVINGPHOTO_SERVICE_TOKEN": SERVICE_TOKEN,
        "HF_TOKEN": "hf_plain",
    }
    configure_from_env(env, stream=stream)
    log = logging.getLogger("test.env")
    log.debug("calling with %s and %s", SERVICE_TOKEN, "hf_plain")
    (record,) = json_lines(stream)
    assert record["message"] == f"calling with {REDACTED} and {REDACTED}"
    assert record["level"] == "DEBUG"
