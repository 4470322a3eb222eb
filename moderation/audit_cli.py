"""``livingphoto audit``: the operator's view of recent refusals (and deletions) in the audit log.

Usage::

    livingphoto audit                          # the 20 newest refusals where `animate` records them
    livingphoto audit --data-dir data --limit 50
    livingphoto audit --json                   # {"refusals": [{"at": …, "category": …, …}]}
    livingphoto audit --deletions              # what was deleted (forget, revoke, retention)

The log is opened read-only, so this is safe while the service runs. Without ``--data-dir`` it
is the command-line tools' data directory (``livingphoto.data_dir.cli_data_dir``:
``LIVINGPHOTO_DATA_DIR``, else the user's state directory), where ``livingphoto animate`` records
its refusals; the service's log is in the service's data directory.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livingphoto.data_dir import cli_data_dir
from livingphoto.errors import UsageError
from moderation.audit import AUDIT_DB, AuditLog


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``audit`` subcommand to ``sub``."""
    parser = sub.add_parser(
        "audit",
        help="list recent moderation refusals from the audit log",
        description="List recent moderation refusals (or deletions) from the audit log.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data directory (default: LIVINGPHOTO_DATA_DIR, else where `livingphoto animate` "
        "records: $XDG_STATE_HOME/livingphoto or ~/.local/state/livingphoto)",
    )
    parser.add_argument("--limit", type=_positive, default=20, help="rows to show (default 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--deletions", action="store_true", help="list recorded deletions instead of refusals"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir if args.data_dir is not None else cli_data_dir(create=False)
    if not data_dir.is_dir():
        raise UsageError(f"data directory {data_dir} does not exist")
    kind = "deletions" if args.deletions else "refusals"
    rows: list[dict[str, object]] = []
    if (data_dir / AUDIT_DB).is_file():
        log = AuditLog.open_readonly(data_dir)
        try:
            entries = log.deletions(args.limit) if args.deletions else log.refusals(args.limit)
            rows = [entry.as_dict() for entry in entries]
        finally:
            log.close()
    if args.json:
        print(json.dumps({kind: rows}, ensure_ascii=False))
        return 0
    if not rows:
        print(f"no {kind} recorded in {data_dir}")
        return 0
    if args.deletions:
        _table(
            ["time (UTC)", "platform", "subject", "reason", "deleted"],
            [
                [_time(r["at"]), r["platform"], r["subject"], r["reason"], _counts(r["counts"])]
                for r in rows
            ],
        )
    else:
        _table(
            ["time (UTC)", "platform", "user", "chat", "stage", "category", "rule", "detail"],
            [
                [
                    _time(r["at"]),
                    r["platform"],
                    r["user_id"],
                    r["chat_id"] or "-",
                    r["stage"],
                    r["category"],
                    r["rule"],
                    r["excerpt"] or r["detail"] or "-",
                ]
                for r in rows
            ],
        )
    return 0


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {raw!r}")
    return value


def _time(value: object) -> str:
    at = float(value) if isinstance(value, int | float) else 0.0
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _counts(value: object) -> str:
    if not isinstance(value, dict):
        return "-"
    return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"


def _table(header: list[str], rows: list[list[object]]) -> None:
    cells = [header, *[[" ".join(str(c).split()) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
