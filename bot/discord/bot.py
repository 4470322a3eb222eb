"""The discord.py client: slash commands, photo messages, buttons and reactions -> the flow.

Uses run one way: ``app`` -> ``bot`` -> ``port`` -> ``buttons`` (and ``bot`` -> ``buttons``);
``buttons`` reaches the client through its ``ButtonTarget`` protocol, never by import.

Every event carries the user's language: an interaction's ``locale`` (the guild's locale as the
fallback); messages and reactions carry none, so the guild's preferred locale stands in (after
the user's own /settings choice and the guild's admin default).

``LivingPhotoBot`` owns the discord.py side (intents, the command tree synced at start-up, the
persistent ``FlowButton`` registered in ``setup_hook``); ``Router`` turns each platform event into
one ``Flow`` call. Every interaction is deferred before anything else (Discord wants an answer
within 3 seconds). The bot needs no privileged intent: it reads plain messages only in DMs and
when mentioned, where Discord sends the content without the message-content intent.

Usage::

    bot = LivingPhotoBot()
    await bot.login(token)                 # setup_hook: dynamic buttons + command sync
    bot.route_to(Router(flow, port, bot))
    await bot.connect()
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from typing import Any, Literal

import discord
from discord import app_commands
from discord.app_commands import locale_str

from bot.discord.buttons import FlowButton
from bot.discord.port import DiscordPort
from bot.discord.translator import CatalogueTranslator
from bot.flow import (
    MAX_SECONDS,
    MAX_VARIATIONS,
    MIN_SECONDS,
    MIN_VARIATIONS,
    Chat,
    Flow,
    ImageRef,
    Incoming,
)

log = logging.getLogger(__name__)

MAX_TRACKED_REACTIONS = 10_000


class Router:
    """Platform events -> ``Flow`` calls. Holds the flow, the port and the client."""

    def __init__(self, flow: Flow, port: DiscordPort, client: discord.Client) -> None:
        self._flow = flow
        self._port = port
        self._client = client
        # (message id, user id) -> that user's current reactions, to hand the flow the full set.
        self._reactions: OrderedDict[tuple[int, int], set[str]] = OrderedDict()

    @staticmethod
    def _chat(channel_id: int | None, guild_id: int | None) -> Chat:
        return Chat(str(channel_id or 0), "private" if guild_id is None else "group")

    def _from_interaction(
        self, interaction: discord.Interaction[Any], key: str, message_id: str
    ) -> Incoming:
        permissions = interaction.permissions
        guild_locale = interaction.guild_locale
        return Incoming(
            event_id=key,
            chat=self._chat(interaction.channel_id, interaction.guild_id),
            user_id=str(interaction.user.id),
            message_id=message_id,
            language=interaction.locale.value,  # the user's client language
            chat_language=guild_locale.value if guild_locale is not None else "",
            group_id=f"g{interaction.guild_id}" if interaction.guild_id else "",
            admin=interaction.guild_id is None
            or permissions.administrator
            or permissions.manage_guild,
        )

    def _guild_locale(self, guild_id: int | None) -> str:
        """A guild's preferred locale: the language fallback of events that carry none."""
        guild = self._client.get_guild(guild_id) if guild_id else None
        return guild.preferred_locale.value if guild is not None else ""

    async def _defer_command(self, interaction: discord.Interaction[Any]) -> Incoming:
        await interaction.response.defer(ephemeral=True, thinking=True)
        key = self._port.remember(interaction, original_used=False)
        return self._from_interaction(interaction, key, key)

    # -- slash commands ----------------------------------------------------------------------
    async def on_animate(
        self,
        interaction: discord.Interaction[Any],
        photo: discord.Attachment,
        motion: str,
        variations: int | None,
        seconds: float | None,
    ) -> None:
        ev = await self._defer_command(interaction)
        image = ImageRef(photo.url, photo.filename, photo.content_type or "", photo.size)
        # variations/seconds are this request's only: the user's /settings stay as they are
        await self._flow.on_animate(ev, image, motion, variations=variations, seconds=seconds)

    async def on_consent(
        self, interaction: discord.Interaction[Any], action: Literal["show", "revoke"]
    ) -> None:
        ev = await self._defer_command(interaction)
        await self._flow.on_consent(ev, action)

    async def on_forget(self, interaction: discord.Interaction[Any]) -> None:
        ev = await self._defer_command(interaction)
        await self._flow.on_forget(ev)

    async def on_settings(self, interaction: discord.Interaction[Any], args: str) -> None:
        ev = await self._defer_command(interaction)
        await self._flow.on_settings(ev, args)

    async def on_help(self, interaction: discord.Interaction[Any]) -> None:
        ev = await self._defer_command(interaction)
        await self._flow.on_help(ev)

    # -- buttons -----------------------------------------------------------------------------
    async def on_button(self, interaction: discord.Interaction[Any], token: str) -> None:
        await interaction.response.defer()  # a silent "deferred update" of the message
        key = self._port.remember(interaction, original_used=True)
        message_id = str(interaction.message.id) if interaction.message is not None else ""
        await self._flow.on_button(self._from_interaction(interaction, key, message_id), key, token)

    # -- messages ----------------------------------------------------------------------------
    async def on_message(self, message: discord.Message) -> None:
        me = self._client.user
        if message.author.bot or me is None:
            return
        private = message.guild is None
        if not private and me not in message.mentions:
            return
        text = re.sub(rf"<@!?{me.id}>", " ", message.content).strip()
        ev = Incoming(
            event_id=f"m{message.id}",
            chat=self._chat(message.channel.id, message.guild.id if message.guild else None),
            user_id=str(message.author.id),
            message_id=str(message.id),
            # messages carry no user locale: the user's /settings, else the guild's language
            chat_language=message.guild.preferred_locale.value if message.guild else "",
            group_id=f"g{message.guild.id}" if message.guild else "",
        )
        if message.attachments:
            photo = message.attachments[0]
            image = ImageRef(photo.url, photo.filename, photo.content_type or "", photo.size)
            if text or not private:
                await self._flow.on_animate(ev, image, text)
            else:
                await self._flow.on_photo(ev, image)
            return
        if not text:
            await self._flow.on_help(ev)
        elif private:
            await self._flow.on_text(ev, text)  # the motion, when the flow asked for one
        else:
            await self._flow.on_animate(ev, None, text)  # a mention without a photo

    # -- reactions ---------------------------------------------------------------------------
    async def on_reaction(self, payload: discord.RawReactionActionEvent, added: bool) -> None:
        me = self._client.user
        if me is None or payload.user_id == me.id:
            return  # the bot's own number reactions never count
        if payload.message_author_id is not None and payload.message_author_id != me.id:
            return  # only reactions on the bot's messages can pick or vote
        key = (payload.message_id, payload.user_id)
        current = self._reactions.pop(key, set())
        emoji = str(payload.emoji)
        if added:
            current.add(emoji)
        else:
            current.discard(emoji)
        self._reactions[key] = current
        while len(self._reactions) > MAX_TRACKED_REACTIONS:
            self._reactions.popitem(last=False)
        ev = Incoming(
            event_id=f"r{payload.message_id}:{payload.user_id}:{time.time_ns()}",
            chat=self._chat(payload.channel_id, payload.guild_id),
            user_id=str(payload.user_id),
            message_id=str(payload.message_id),
            chat_language=self._guild_locale(payload.guild_id),
            group_id=f"g{payload.guild_id}" if payload.guild_id else "",
        )
        await self._flow.on_reaction(ev, str(payload.message_id), sorted(current))


class LivingPhotoBot(discord.Client):
    """discord.py client with the livingphoto commands; events go to the ``Router``."""

    def __init__(self, *, guild_ready_timeout: float = 2.0, sync_commands: bool = True) -> None:
        intents = discord.Intents.default()  # no privileged intent needed (DMs and mentions)
        super().__init__(
            intents=intents,
            guild_ready_timeout=guild_ready_timeout,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
        )
        self.tree: app_commands.CommandTree[LivingPhotoBot] = app_commands.CommandTree(self)
        for command in make_commands():
            self.tree.add_command(command)
        self._sync_commands = sync_commands
        self._router: Router | None = None

    @property
    def router(self) -> Router:
        if self._router is None:
            raise RuntimeError("LivingPhotoBot.route_to() must be called before connecting")
        return self._router

    def route_to(self, router: Router) -> None:
        self._router = router

    async def setup_hook(self) -> None:
        self.add_dynamic_items(FlowButton)  # buttons of earlier runs keep working
        await self.tree.set_translator(CatalogueTranslator())  # localised descriptions
        if self._sync_commands:
            synced = await self.tree.sync()
            log.info("synced %d application commands", len(synced))

    async def on_flow_button(self, interaction: discord.Interaction[Any], token: str) -> None:
        """A press of a ``FlowButton`` (``buttons.ButtonTarget``)."""
        await self.router.on_button(interaction, token)

    async def on_message(self, message: discord.Message) -> None:
        await self.router.on_message(message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.router.on_reaction(payload, added=True)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self.router.on_reaction(payload, added=False)


def _router(interaction: discord.Interaction[Any]) -> Router:
    client = interaction.client
    if not isinstance(client, LivingPhotoBot):
        raise RuntimeError("livingphoto commands run only on LivingPhotoBot")
    return client.router


def make_commands() -> list[app_commands.Command[Any, Any, None]]:
    """The slash commands, new objects for each bot."""

    @app_commands.command(
        name="animate", description=locale_str("Animate a photo into a short looping clip")
    )
    @app_commands.describe(
        photo=locale_str("one sharp, front-facing photo"),
        motion=locale_str("one subtle motion, e.g. 'subtle blink, slight head tilt'"),
        variations=locale_str(
            "how many takes to make (1-6; this request only, /settings keeps defaults)"
        ),
        seconds=locale_str("clip length in seconds (2-5; this request only)"),
    )
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def animate(
        interaction: discord.Interaction[Any],
        photo: discord.Attachment,
        motion: app_commands.Range[str, 1, 300],
        variations: app_commands.Range[int, MIN_VARIATIONS, MAX_VARIATIONS] | None = None,
        seconds: app_commands.Range[float, MIN_SECONDS, MAX_SECONDS] | None = None,
    ) -> None:
        await _router(interaction).on_animate(interaction, photo, motion, variations, seconds)

    @app_commands.command(
        name="consent", description=locale_str("See or revoke your consent record")
    )
    @app_commands.describe(action=locale_str("show your record (default) or revoke it"))
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def consent(
        interaction: discord.Interaction[Any], action: Literal["show", "revoke"] = "show"
    ) -> None:
        await _router(interaction).on_consent(interaction, action)

    @app_commands.command(
        name="forget", description=locale_str("Delete your photos, clips and consent record")
    )
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def forget(interaction: discord.Interaction[Any]) -> None:
        await _router(interaction).on_forget(interaction)

    @app_commands.command(
        name="settings", description=locale_str("Your defaults: takes, seconds, motion, language")
    )
    @app_commands.describe(
        change=locale_str(
            "e.g. 'variations 4', 'motion subtle', 'language es' or 'chat language de'"
        )
    )
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def settings(interaction: discord.Interaction[Any], change: str = "") -> None:
        await _router(interaction).on_settings(interaction, change)

    @app_commands.command(name="help", description=locale_str("How to get the best clips"))
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def help_(interaction: discord.Interaction[Any]) -> None:
        await _router(interaction).on_help(interaction)

    return [animate, consent, forget, settings, help_]
