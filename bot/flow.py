"""The one platform-neutral conversation flow shared by the Telegram and Discord bots.

A *skin* (``bot/telegram``, ``bot/discord``) turns platform events into calls on ``Flow`` and
implements ``ChatPort`` so the flow can talk back. The flow owns every decision: consent,
submitting jobs, the one status message edited in place, delivering variations, the keyboard,
votes, the final pick, child jobs (re-roll / less / more / vary), settings, /forget, and resuming
after a restart. No conversation logic lives in a skin.

USAGE (what a skin does)::

    async with aiohttp.ClientSession() as http:                       # opened once, passed in
        client = ServiceClient(http, settings.bot.service_url, settings.bot.service_token)
        with BotState.open(state_path) as state:                        # SQLite, survives restarts
            async with Flow(port, client, state, FlowOptions.from_settings(settings.bot)) as flow:
                ...  # route platform events to flow.on_* until asked to stop

``async with Flow(...)`` resumes pending jobs (re-attaches to their progress and delivers any
variation not yet sent) and cancels its background tasks on exit.

PORT (what a skin implements; every id is an opaque ``str`` the skin chose)::

    class ChatPort(Protocol):
        platform: str                      # "telegram" | "discord" (requester.platform at the service)
        max_image_bytes: int               # the platform's download limit (Telegram: 20 MB)
        async def send_text(chat, text, *, reply_to="", private=False) -> message_id
        async def edit_text(chat, message_id, text) -> None
        async def send_keyboard(chat, text, rows, *, reply_to="", private=False) -> message_id
        async def edit_keyboard(chat, message_id, rows | None) -> None   # None removes the keyboard
        async def send_clips(chat, clips, *, final) -> list[message_id]  # one id per clip, in order
        async def answer_callback(callback_id, text="", *, alert=False) -> None
        async def fetch_image(image: ImageRef) -> bytes

- ``private=True`` marks a notice meant only for the requester (consent question, refusals,
  "this request has expired"): a skin that can (Discord ephemeral replies) shows it to them only.
- ``reply_to`` is the ``Incoming.message_id`` of the event being answered ("" for none). A Discord
  skin may set ``Incoming.message_id`` to its interaction id and answer through it.
- ``send_clips`` may post one message per clip (Telegram ``sendAnimation``) or one message holding
  all clips (Discord); return one message id per clip either way (repeat the id if shared).
  ``final=True`` is the winner sent once more. A skin may re-encode to fit its upload limit.
- ``Button.token`` is a short opaque id (<= 16 chars) stored in ``BotState``: put it in the
  callback data / ``custom_id`` (e.g. ``"lp:" + token``) and hand it back to ``on_button``. The
  flow validates it: forged or expired tokens get "this request has expired", never an exception.

EVENTS (what a skin calls; each takes an ``Incoming`` whose ``event_id`` is unique per platform
event; calling twice with the same ``event_id`` is a no-op, so duplicated updates are processed once)::

    await flow.on_help(ev)                              # /start, /help
    await flow.on_animate(ev, image, prompt)            # image: ImageRef | None; prompt may be ""
    await flow.on_photo(ev, image)                      # a photo with no command (private: asks the motion)
    handled = await flow.on_text(ev, text)              # plain text: the motion, if the flow asked for it
    await flow.on_bad_file(ev, reason)                  # "not_image" | "too_large": a clear message
    await flow.on_button(ev, callback_id, token)        # always answers the callback
    await flow.on_reaction(ev, message_id, emojis)      # the user's current reactions on a message
    await flow.on_consent(ev, action)                   # "show" | "revoke"
    await flow.on_forget(ev)
    await flow.on_settings(ev, args)                    # "" shows; "variations 4", "seconds 3", "motion subtle"

Reactions: in a private chat the requester's 👍 ❤️ 🔥 (or 1️⃣…) on a variation picks it at once.
In a group, members' reactions are votes for ``FlowOptions.vote_window_s``; the requester's pick
(button or reaction) ends the vote at once; at the end of the window the most-voted take wins.
Only the requester may press a job's buttons; others are told so in the callback answer. A skin
must not report the bot's own reactions.
"""

from __future__ import annotations
