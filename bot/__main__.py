"""``python -m bot`` / ``dinobot``: run the bot with the configuration from ``.env``.

Exit codes: 0 clean shutdown, 2 missing or invalid configuration (with instructions), 1 a
failure at start-up (bad token, a database that cannot be reached or opened) explained in one
log line. ``python -m bot db copy ...`` is the database tool (:mod:`bot.db_command`).

For tests only: ``DINOBOT_DISCORD_API_BASE=http://127.0.0.1:PORT`` points discord.py at a fake
Discord on this machine (REST under ``/api/v10``, gateway at ``/gateway``), so the real process
can be run end to end by ``tests/test_bot_process.py``. Only loopback addresses are accepted,
so a misconfiguration can never send the token anywhere but Discord or this machine.
"""
from __future__ import annotations

import os

# The networks' matrices are small: extra BLAS threads only fight the event loop and the
# training thread for the two cores. Set before NumPy is first imported (by .app below).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import asyncio  # noqa: E402
import logging  # noqa: E402
import logging.handlers  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from typing import Mapping  # noqa: E402

import discord  # noqa: E402
import yarl  # noqa: E402

from bot.app import DinoBot, check_database  # noqa: E402
from bot.config import TOKEN_HELP, Config, ConfigError, load_config  # noqa: E402
from bot.errors import StorageError  # noqa: E402

log = logging.getLogger("bot")

TEST_API_BASE = "DINOBOT_DISCORD_API_BASE"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def redirect_to_fake_discord(environ: Mapping[str, str]) -> str | None:
    """Testing only: send REST and gateway traffic to a fake Discord on loopback; its base URL.

    discord.py reads its REST base (``Route.BASE``) and a plain client's gateway
    (``DiscordWebSocket.DEFAULT_GATEWAY``) from class attributes, so redirecting is two
    assignments; nothing else in the bot knows about it.
    """
    raw = environ.get(TEST_API_BASE, "").strip()
    if not raw:
        return None
    url = yarl.URL(raw)
    if url.scheme != "http" or url.host not in _LOOPBACK or url.port is None:
        raise ConfigError(f"{TEST_API_BASE} is for tests against a fake Discord and must look like "
                          f"http://127.0.0.1:PORT, not {raw!r}; leave it unset to use Discord")
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    root = url.with_path("")
    Route.BASE = str(root.with_path("/api/v10"))  # type: ignore[misc]
    DiscordWebSocket.DEFAULT_GATEWAY = root.with_scheme("ws").with_path("/gateway")
    return str(root)


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
    await check_database(config)  # a database problem ends the start here, before Discord
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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["db"]:
        from bot.db_command import main as db_main

        return db_main(argv[1:])
    try:
        config = load_config()
        fake_discord = redirect_to_fake_discord(os.environ)
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    if not config.token:
        print(TOKEN_HELP, file=sys.stderr)
        return 2
    setup_logging(config)
    if fake_discord:
        log.warning("%s is set: talking to a fake Discord at %s (tests only)", TEST_API_BASE, fake_discord)
    try:
        asyncio.run(run(config))
    except discord.LoginFailure:
        log.error("Discord refused the token. Reset it in the developer portal (Bot → Reset Token) "
                  "and update DISCORD_TOKEN in .env.")
        return 1
    except discord.PrivilegedIntentsRequired:
        log.error("Discord refused the requested intents; this bot needs none that are privileged.")
        return 1
    except StorageError as exc:  # unreachable, refused, or from a newer DinoBot: one line, no traceback
        log.error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
