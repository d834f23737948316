"""``python -m bot`` / ``dinobot``: run the bot with the configuration from ``.env``.

Exit codes: 0 clean shutdown, 2 missing or invalid configuration (with instructions), 1 a
failure at start-up (bad token, unreadable database) explained in the log.
"""
from __future__ import annotations

import asyncio
import logging
import logging.handlers
import signal
import sys

import discord

from .app import DinoBot
from .config import TOKEN_HELP, Config, ConfigError, load_config

log = logging.getLogger("bot")


def setup_logging(config: Config) -> None:
    """discord.py's coloured console logging, plus a rotating file in the data directory."""
    level = getattr(logging, config.log_level)
    discord.utils.setup_logging(level=level, root=True)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(config.log_file, maxBytes=5 * 2**20, backupCount=5,
                                                        encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s"))
    logging.getLogger().addHandler(file_handler)


async def run(config: Config) -> None:
    bot = DinoBot(config)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    async with bot:
        runner = asyncio.create_task(bot.start(config.token or ""))
        stopper = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            log.info("shutting down: cancelling training, closing the database")
            await bot.close()
        stopper.cancel()
        await runner  # re-raises a start-up failure such as a bad token


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    if not config.token:
        print(TOKEN_HELP, file=sys.stderr)
        return 2
    setup_logging(config)
    try:
        asyncio.run(run(config))
    except discord.LoginFailure:
        log.error("Discord refused the token. Reset it in the developer portal (Bot → Reset Token) "
                  "and update DISCORD_TOKEN in .env.")
        return 1
    except discord.PrivilegedIntentsRequired:
        log.error("Discord refused the requested intents; this bot needs none that are privileged.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
