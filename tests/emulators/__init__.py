"""Local emulators of the chat platforms (Telegram Bot API, Discord) for tests over the wire."""
