"""Settings of the chat bots. Tokens are never logged or echoed (see ``__repr__``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from livingphoto.env import env_float, env_int, env_str


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
    # Bot state (pending jobs, buttons, votes, settings): <data_dir>/bot/<platform>.sqlite3
    data_dir: Path = Path("data")  # LIVINGPHOTO_DATA_DIR
    vote_window_s: float = 300.0  # LIVINGPHOTO_VOTE_WINDOW_S: group votes by reaction
    callback_ttl_s: float = 172800.0  # LIVINGPHOTO_BUTTON_TTL_S: buttons expire after this
    # Defaults for users who never used /settings, and the clip size asked of the service.
    default_variations: int = 3  # LIVINGPHOTO_BOT_VARIATIONS
    default_seconds: float = 3.0  # LIVINGPHOTO_BOT_SECONDS
    clip_size: int = 0  # LIVINGPHOTO_BOT_CLIP_SIZE: long side in px, 0 = the service's default

    def state_path(self, platform: str) -> Path:
        return self.data_dir / "bot" / f"{platform}.sqlite3"

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
            data_dir=Path(env_str(env, "LIVINGPHOTO_DATA_DIR", str(cls.data_dir))),
            vote_window_s=env_float(env, "LIVINGPHOTO_VOTE_WINDOW_S", cls.vote_window_s, 0.0),
            callback_ttl_s=env_float(env, "LIVINGPHOTO_BUTTON_TTL_S", cls.callback_ttl_s, 1.0),
            default_variations=env_int(env, "LIVINGPHOTO_BOT_VARIATIONS", 3, minimum=1),
            default_seconds=env_float(env, "LIVINGPHOTO_BOT_SECONDS", 3.0, minimum=0.5),
            clip_size=env_int(env, "LIVINGPHOTO_BOT_CLIP_SIZE", 0, minimum=0),
        )
