"""``python -m bot`` / ``dinobot``: run the bot with the configuration from ``.env``.

Start-up checks everything local first (configuration, data folder, corpus, database, base
checkpoint), then waits for Discord (retrying with backoff while it is unreachable), then logs
in. Any failure is one line naming the setting or file, and everything opened so far is closed.

Exit codes: 0 clean shutdown; 1 a file or folder that cannot be used, a token Discord refuses,
or an unexpected error (its traceback is in the log file); 2 configuration to fix (a missing
token, a malformed or out-of-range setting, a path to the wrong thing, a DEV_GUILD_ID the bot is
not in) or bad command-line usage. ``python -m bot db copy ...`` is the database tool
(:mod:`bot.db_command`).

For tests only: ``DINOBOT_DISCORD_API_BASE=http://127.0.0.1:PORT`` points discord.py at a fake
Discord on this machine (REST under ``/api/v10``, gateway at ``/gateway``), so the real process
can be run end to end by ``tests/bot/test_process.py``. Only loopback addresses are accepted,
so a misconfiguration can never send the token anywhere but Discord or this machine.
"""
from __future__ import annotations

import os

# The networks' matrices are small: extra BLAS threads only fight the event loop and the
# training thread for the two cores. Set before NumPy is first imported (by bot.config below).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import logging  # noqa: E402
import logging.handlers  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from typing import Awaitable, Mapping  # noqa: E402

import yarl  # noqa: E402

from bot.allocator import return_large_blocks_to_the_os  # noqa: E402
from bot.config import TOKEN_HELP, Config, ConfigError, load_config  # noqa: E402
from bot.errors import EXIT_CONFIG, EXIT_DATA, StartupError  # noqa: E402

# discord.py, the services and the start-up checks are imported where they are first needed:
# ``--help`` and a refused configuration answer in a third of a second instead of over one.

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


#: ``extra={FILE_ONLY: True}`` keeps a record (a traceback) out of the console, in the log file.
FILE_ONLY = "dinobot_file_only"
TOKEN_REFUSED = ("Discord refused the token. Reset it in the developer portal (Bot → Reset Token) "
                 "and update DISCORD_TOKEN in .env.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="Run DinoBot, configured from the environment and .env "
        "(see .env.example and the README's Configuration section).",
        epilog="Exit codes: 0 clean shutdown, 1 a file or folder that cannot be used (or a refused "
               "token), 2 configuration to fix.")
    parser.add_argument("--sync", action="store_true",
                        help="sync the slash commands with Discord even if they look unchanged")
    return parser.parse_args(argv)


def setup_logging(config: Config) -> None:
    """discord.py's coloured console logging, plus a rotating file in the (checked) data folder."""
    import discord

    level = getattr(logging, config.log_level)
    discord.utils.setup_logging(level=level, root=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(lambda record: not getattr(record, FILE_ONLY, False))
    file_handler = logging.handlers.RotatingFileHandler(config.log_file, maxBytes=5 * 2**20, backupCount=5,
                                                        encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s"))
    logging.getLogger().addHandler(file_handler)


async def unless_stopped(step: Awaitable[object], stopping: asyncio.Event) -> bool:
    """Run ``step`` unless SIGINT/SIGTERM comes first (then cancel it); whether it finished."""
    task = asyncio.ensure_future(step)
    stopper = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task in done:
        task.result()  # re-raises a failure
        return True
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return False


async def run(config: Config, *, force_sync: bool = False) -> None:
    from discord.http import Route

    from bot.app import DinoBot
    from bot.startup import wait_for_discord

    bot = DinoBot(config, force_sync=force_sync)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    token = config.token or ""
    async with bot:  # closes whatever was opened, however this block ends
        for step in (bot.open_services, lambda: wait_for_discord(Route.BASE, token, bot.http.user_agent)):
            if not await unless_stopped(step(), stopping):
                log.info("shutting down before connecting to Discord")
                return
        runner = asyncio.create_task(bot.start(token))
        stopper = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            log.info("shutting down: cancelling training, closing the database")
            await bot.close()
        stopper.cancel()
        await runner  # re-raises a start-up failure such as a bad token or a refused DEV_GUILD_ID


def prepare() -> tuple[Config, str | None] | int:
    """The configuration and the fake Discord's address (tests), or the exit code after one line
    on stderr: everything here is checked before logging starts and before any heavy import."""
    try:
        config = load_config()
        fake_discord = redirect_to_fake_discord(os.environ)
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if not config.token:
        print(TOKEN_HELP, file=sys.stderr)
        return EXIT_CONFIG
    from bot.startup import prepare_data_dir

    try:
        prepare_data_dir(config.data_dir)  # before the log file is opened in it
    except StartupError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return exc.exit_code
    return config, fake_discord


def serve(config: Config, fake_discord: str | None, *, force_sync: bool) -> int:
    """Run the bot until SIGINT/SIGTERM; every way it can end becomes one log line and a code."""
    import discord

    from bot.startup import TokenRefused

    setup_logging(config)
    return_large_blocks_to_the_os()
    if fake_discord:
        log.warning("%s is set: talking to a fake Discord at %s (tests only)", TEST_API_BASE, fake_discord)
    try:
        asyncio.run(run(config, force_sync=force_sync))
    except StartupError as exc:
        log.error("Cannot start: %s", exc)
        return exc.exit_code
    except (discord.LoginFailure, TokenRefused):
        log.error(TOKEN_REFUSED)
        return EXIT_DATA
    except discord.PrivilegedIntentsRequired:
        log.error("Discord refused the requested intents; this bot needs none that are privileged.")
        return EXIT_DATA
    except Exception as exc:  # noqa: BLE001 - a bug: one line here, the traceback in the log file
        log.error("DinoBot stopped on an unexpected error: %s: %s (the traceback is in %s)",
                  type(exc).__name__, " ".join(str(exc).split()), config.log_file)
        log.error("unexpected error", exc_info=exc, extra={FILE_ONLY: True})
        return EXIT_DATA
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["db"]:
        from bot.db_command import main as db_main

        return db_main(argv[1:])
    args = parse_args(argv)
    prepared = prepare()
    if isinstance(prepared, int):
        return prepared
    return serve(*prepared, force_sync=args.sync)


if __name__ == "__main__":
    sys.exit(main())
