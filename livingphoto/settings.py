"""All settings, read once at start-up from the environment and a ``.env`` file (DESIGN.md section 4).

Each package owns its own settings class; this module only puts them together.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.config import BotSettings
from generation.config import GenerationSettings, ServiceSettings
from livingphoto.env import load_environ
from livingphoto.logs import LoggingSettings, configure_logging
from moderation.config import ModerationSettings


@dataclass(frozen=True)
class Settings:
    generation: GenerationSettings
    service: ServiceSettings
    moderation: ModerationSettings
    bot: BotSettings
    logging: LoggingSettings

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv_path: Path | None = None
    ) -> Settings:
        env = load_environ(os.environ if environ is None else environ, dotenv_path)
        return cls(
            generation=GenerationSettings.from_env(env),
            service=ServiceSettings.from_env(env),
            moderation=ModerationSettings.from_env(env),
            bot=BotSettings.from_env(env),
            logging=LoggingSettings.from_env(env),
        )

    def secrets(self) -> tuple[str, ...]:
        """Every token this process knows: the log redaction filter removes them."""
        values = (self.service.service_token, self.bot.telegram_token, self.bot.discord_token)
        return tuple(value for value in values if value)

    def configure_logging(self) -> None:
        """Set up this process's logging once, at start-up (text or JSON lines, redacted)."""
        configure_logging(self.logging.json_lines, self.logging.level, secrets=self.secrets())
