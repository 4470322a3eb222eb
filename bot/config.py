"""Settings of the chat bots. Tokens are never logged or echoed (see ``__repr__``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from livingphoto.env import env_str


@dataclass(frozen=True)
class BotSettings:
    service_url: str = "http://127.0.0.1:8750"  # LIVINGPHOTO_SERVICE_URL
    service_token: str = field(default="", repr=False)  # LIVINGPHOTO_SERVICE_TOKEN
    telegram_token: str = field(default="", repr=False)  # TELEGRAM_BOT_TOKEN
    telegram_api_base_url: str = "https://api.telegram.org/bot"  # TELEGRAM_API_BASE_URL
    telegram_file_base_url: str = "https://api.telegram.org/file/bot"  # TELEGRAM_FILE_BASE_URL
    discord_token: str = field(default="", repr=False)  # DISCORD_BOT_TOKEN
    discord_api_base_url: str = "https://discord.com/api/v10"  # DISCORD_API_BASE_URL
    discord_gateway_url: str = "wss://gateway.discord.gg/"  # DISCORD_GATEWAY_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BotSettings:
        return cls(
            service_url=env_str(env, "LIVINGPHOTO_SERVICE_URL", cls.service_url),
            service_token=env_str(env, "LIVINGPHOTO_SERVICE_TOKEN", ""),
            telegram_token=env_str(env, "TELEGRAM_BOT_TOKEN", ""),
            telegram_api_base_url=env_str(env, "TELEGRAM_API_BASE_URL", cls.telegram_api_base_url),
            telegram_file_base_url=env_str(
                env, "TELEGRAM_FILE_BASE_URL", cls.telegram_file_base_url
            ),
            discord_token=env_str(env, "DISCORD_BOT_TOKEN", ""),
            discord_api_base_url=env_str(env, "DISCORD_API_BASE_URL", cls.discord_api_base_url),
            discord_gateway_url=env_str(env, "DISCORD_GATEWAY_URL", cls.discord_gateway_url),
        )
