"""The moderation layer: nothing reaches a generator unless it passes here (DESIGN.md, issue 4).

- ``gate``: ``Moderator``, the one object the CLI, the service and the bots ask;
- ``intake``: untrusted photo bytes -> sanitised RGB pixels;
- ``policy`` + ``policy.toml`` + ``normalize``: the prompt policy and its evasion-proof matching;
- ``consent``: the consent ledger and the consent wording;
- ``nsfw``: the NSFW detector interface and the bundled open_nsfw model;
- ``ratelimit``: token buckets and the daily quota;
- ``audit`` + ``audit_cli``: the audit log and ``livingphoto audit``;
- ``provenance``: the synthetic-content label and C2PA signing;
- ``config``: ``ModerationSettings`` (environment variables in ``config.ENV_VARS``).
"""
