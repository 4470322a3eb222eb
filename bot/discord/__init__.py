"""The Discord skin of the livingphoto bot (discord.py 2.7) on the shared ``bot.flow``.

- ``app``: ``main(settings) -> int`` and ``run_bot(settings, stop)``; opens every resource.
- ``bot``: the discord.py client (slash commands, photo messages, reactions) and the ``Router``
  turning events into ``Flow`` calls.
- ``port``: ``DiscordPort``, the flow's ``ChatPort`` (deferred interactions, ephemeral notices,
  clips message with reactions and buttons).
- ``buttons``: the persistent ``FlowButton`` (``DynamicItem``) and view builders.
- ``media``: fitting clips to a channel's upload limit and the animated WebP preview.
"""
