"""Buttons that survive restarts: a ``DynamicItem`` matching ``lp:<token>`` custom ids.

Uses run one way: ``bot`` and ``port`` import this module; it imports only ``bot.flow`` and
reaches the client through the ``ButtonTarget`` protocol.

The flow hands out short opaque tokens (``Button.token``, at most 16 URL-safe characters) kept in
its SQLite state, so the ``custom_id`` (``"lp:" + token``, well under Discord's 100 characters)
is all a press needs. ``FlowButton`` is registered once in ``setup_hook`` with
``Client.add_dynamic_items``; views are sent with ``timeout=None``, so a press on a message sent
before a restart still reaches the flow.

Usage::

    client.add_dynamic_items(FlowButton)             # in setup_hook
    await channel.send(text, view=build_view(rows))   # rows: the flow's Button rows
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import discord

from bot.flow import Rows

PREFIX = "lp:"
TOKEN_PATTERN = r"[A-Za-z0-9_-]{1,16}"
MAX_ROWS = 5
MAX_PER_ROW = 5
MAX_LABEL = 80


@runtime_checkable
class ButtonTarget(Protocol):
    """What a press is handed to: the discord.py client (``LivingPhotoBot``) implements it, so
    this module needs nothing of the client's (uses run one way: bot -> buttons)."""

    async def on_flow_button(self, interaction: discord.Interaction[Any], token: str) -> None: ...


def custom_id(token: str) -> str:
    if re.fullmatch(TOKEN_PATTERN, token) is None:
        raise ValueError(f"button token {token!r} is not 1-16 URL-safe characters")
    return PREFIX + token


def _style(label: str) -> discord.ButtonStyle:
    return (
        discord.ButtonStyle.primary
        if label.lower().startswith("pick")
        else discord.ButtonStyle.secondary
    )


class FlowButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=PREFIX + "(?P<token>" + TOKEN_PATTERN + ")",
):
    """One flow button; its press is routed to the bot's router with the token."""

    def __init__(self, token: str, label: str = "", *, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label=label[:MAX_LABEL] or None,
                custom_id=custom_id(token),
                style=_style(label),
                disabled=disabled,
            )
        )
        self.token = token

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> FlowButton:
        label = item.label if isinstance(item, discord.ui.Button) else ""
        return cls(match["token"], label or "")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        if not isinstance(client, ButtonTarget):
            raise RuntimeError("flow buttons need a client that routes them (LivingPhotoBot)")
        await client.on_flow_button(interaction, self.token)


def build_view(rows: Rows) -> discord.ui.View:
    """A persistent view (``timeout=None``) with one ``FlowButton`` per flow button."""
    if len(rows) > MAX_ROWS or any(len(row) > MAX_PER_ROW for row in rows):
        raise ValueError("Discord allows at most 5 rows of 5 buttons")
    view = discord.ui.View(timeout=None)
    for number, row in enumerate(rows):
        for button in row:
            item = FlowButton(button.token, button.label)
            item.row = number
            view.add_item(item)
    return view


def disabled_view(components: Sequence[discord.Component]) -> discord.ui.View | None:
    """The same buttons as ``components`` (a fetched message's), all disabled; None if none."""
    view = discord.ui.View(timeout=None)
    for number, row in enumerate(components):
        children = row.children if isinstance(row, discord.ActionRow) else []
        for component in children:
            if not isinstance(component, discord.Button) or component.custom_id is None:
                continue
            view.add_item(
                discord.ui.Button(
                    label=component.label,
                    custom_id=component.custom_id,
                    style=component.style,
                    emoji=component.emoji,
                    disabled=True,
                    row=min(number, MAX_ROWS - 1),
                )
            )
    return view if view.children else None
