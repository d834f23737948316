"""``python -m bot db copy --from URL --to URL``: move DinoBot's data to another database.

Typically once, when a bot outgrows its SQLite file::

    python -m bot db copy --from sqlite:///var/dinobot.sqlite3 \\
                          --to postgresql://dinobot:secret@db.example:5432/dinobot

Stop the bot first (a copy is a snapshot). Both databases are brought to this DinoBot's schema,
every row is copied in one transaction, then compared; the table of counts is printed. Exit
codes: 0 copied (or already copied) and checked, 1 refused or a difference found, 2 bad usage.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from bot.errors import StorageError
from bot.services.store.copy import CopyRefused, CopyReport, copy_database
from bot.services.store.db import open_database
from bot.services.store.target import DatabaseTarget, parse_database_url


def _target(raw: str) -> DatabaseTarget:
    try:
        return parse_database_url(raw if "://" in raw else f"sqlite:///{raw}", Path())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{raw!r}: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot db", description="DinoBot's database tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    copy = commands.add_parser("copy", help="copy every row to another database and check the copy",
                               description="Copy every row of DinoBot's database (names, versions with their "
                                           "checkpoints, settings, jobs, the audit log) to another database "
                                           "in one transaction, then check the copy row by row.")
    copy.add_argument("--from", dest="source", required=True, type=_target, metavar="URL",
                      help="the database to read: sqlite:///path/file.sqlite3 (or a plain path) or postgresql://…")
    copy.add_argument("--to", dest="target", required=True, type=_target, metavar="URL",
                      help="the database to write (created tables as needed)")
    copy.add_argument("--force", action="store_true",
                      help="copy into a database that already has other rows: add only the rows it lacks "
                           "(nothing is overwritten or deleted)")
    copy.add_argument("--legacy-dir", type=Path, metavar="DIR",
                      help="where an older DinoBot kept checkpoint files (default: models/ next to an SQLite source)")
    return parser


async def run_copy(args: argparse.Namespace) -> CopyReport:
    source_target, target_target = args.source, args.target
    if source_target == target_target:
        raise CopyRefused("--from and --to name the same database")
    legacy = args.legacy_dir
    if legacy is None and source_target.backend == "sqlite":
        legacy = source_target.path.parent / "models"
    if source_target.backend == "sqlite" and not source_target.path.is_file():
        raise CopyRefused(f"there is no SQLite database at {source_target.path}")
    source = await open_database(source_target)
    try:
        target = await open_database(target_target)
        try:
            return await copy_database(source, target, force=args.force, legacy_dir=legacy)
        finally:
            await target.close()
    finally:
        await source.close()


def print_report(report: CopyReport, args: argparse.Namespace) -> None:
    print(f"{args.source.redacted} → {args.target.redacted}")
    print(f"{'table':<20}{'source':>9}{'target before':>15}{'added':>9}{'target now':>12}")
    for t in report.tables:
        print(f"{t.name:<20}{t.source:>9}{t.target_before:>15}{t.added:>9}{t.target_after:>12}")
    if report.legacy_files or report.missing_files:
        print(f"checkpoint files moved into the database: {report.legacy_files}")
    for path in report.missing_files:
        print(f"missing checkpoint file (that version falls back to the previous one): {path}")
    problems = [c for t in report.tables for c in t.conflicts]
    for problem in problems[:20]:
        print(f"  {problem}")
    if len(problems) > 20:
        print(f"  … and {len(problems) - 20} more")
    if report.already_copied:
        print("Nothing to do: the target already holds every row of the source, identical.")
    elif report.ok:
        print("OK: every row of the source is in the target, identical (checkpoints checked by SHA-256).")
    else:
        print(f"NOT OK: {len(problems)} rows differ or are missing; nothing in the target was overwritten.")


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = asyncio.run(run_copy(args))
    except (CopyRefused, StorageError) as exc:
        print(f"db copy: {exc}", file=sys.stderr)
        return 1
    print_report(report, args)
    return 0 if report.ok else 1
