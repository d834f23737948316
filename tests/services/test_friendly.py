"""The services behind the friendlier replies, without Discord: percentiles against the shipped
corpus, prefix suggestions, and the charts."""
from __future__ import annotations

import asyncio
import math
import sys
from dataclasses import replace

import pytest

from bot.services import charts
from bot.services import likeness as likeness_module
from bot.services.generation import NameGenerator
from bot.services.likeness import LikenessService, percentile_of
from bot.services.registry import ModelRegistry
from bot.services.store import Store
from bot.services.suggestions import COUNT, Suggestions
from model import Progress, read_names, score_name, score_names, val_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def services(tmp_path):
    store = await Store.open(tmp_path / "db.sqlite3")
    registry = ModelRegistry(store, tmp_path / "models")
    await registry.start()
    generator = NameGenerator(store, registry)
    yield store, registry, generator
    await generator.close()
    await store.close()


# ---------------------------------------------------------------------- percentiles


def test_percentile_counts_corpus_names_strictly_worse() -> None:
    corpus = [1.0, 2.0, 3.0, 4.0]
    assert percentile_of(0.5, corpus) == 100
    assert percentile_of(2.0, corpus) == 50  # ties do not count as beaten
    assert percentile_of(2.5, corpus) == 50
    assert percentile_of(9.0, corpus) == 0
    assert percentile_of(1.5, [1.0, 2.0, 3.0]) == 66  # rounded down
    with pytest.raises(ValueError):
        percentile_of(1.0, [])


async def test_likeness_ranks_against_the_shipped_corpus_under_the_servers_model(services) -> None:
    _, registry, _ = services
    likeness = LikenessService(registry)
    model = registry.base.model
    corpus = sorted(score_names(model, read_names(val_path())))
    result = await likeness.rank(5, "Glimmerosaurus")
    assert result.name == "glimmerosaurus" and result.corpus_size == len(corpus) == 137
    assert result.nats == pytest.approx(score_name(model, "glimmerosaurus"), rel=1e-5)
    assert result.percentile == percentile_of(result.nats, corpus)
    assert (await likeness.rank(5, "qxzqvkjw")).percentile == 0
    first, second = await asyncio.gather(likeness.rank(None, "velociraptor"), likeness.rank(6, "velociraptor"))
    assert first == second  # both served by the base model: one corpus scoring, shared
    key = (likeness_module._identity(registry.base), (val_path(),))
    assert likeness._ranks[key] == corpus


async def test_the_corpus_can_be_another_names_file(services, tmp_path) -> None:
    _, registry, _ = services
    names = tmp_path / "names.txt"
    names.write_text("alphasaurus\nbetasaurus\ngammasaurus\ndeltasaurus\n")
    likeness = LikenessService(registry, corpus=[names])
    ranked = await likeness.rank(None, "alphasaurus")
    assert ranked.corpus_size == 4 and ranked.percentile in (0, 25, 50, 75)


# ---------------------------------------------------------------------- suggestions


async def test_suggestions_start_with_what_was_typed_and_are_cached(services) -> None:
    store, registry, generator = services
    suggestions = Suggestions(generator, registry)
    names = await suggestions.suggest(1, " Tyr")
    assert len(names) >= 3 and all(n.startswith("tyr") and len(n) <= 31 for n in names)
    assert len(set(names)) == len(names) <= COUNT
    assert await suggestions.suggest(1, "tyr") == names  # the same (server, version, prefix): cached
    assert not set(await suggestions.suggest(2, "tyr")) & await store.names.submitted(2)


@pytest.mark.parametrize("typed", ["ty7", "t rex", "🦖", "straße", "a" * 31, "x" * 40])
async def test_junk_gets_no_suggestions_and_no_error(services, typed: str) -> None:
    _, registry, generator = services
    assert await Suggestions(generator, registry).suggest(1, typed) == []


async def test_a_slow_model_gives_no_suggestions_rather_than_a_late_answer(services, monkeypatch) -> None:
    _, registry, generator = services

    async def stuck(*args, **kwargs):
        await asyncio.sleep(60)

    monkeypatch.setattr(generator, "generate", stuck)
    monkeypatch.setattr("bot.services.suggestions.DEADLINE", 0.05)
    assert await Suggestions(generator, registry).suggest(1, "tyr") == []


# ---------------------------------------------------------------------- charts


def progress(member: int, epoch: int, val: float) -> Progress:
    return Progress(epoch=epoch, epochs=3, train_loss=val + 0.1, val_loss=val, best_val_loss=val,
                    chars_per_sec=1e5, elapsed=0.1 * epoch, member=member, members=2)


def test_fine_tune_chart_is_a_png_even_for_odd_inputs() -> None:
    history = [progress(m, e, 1.8 - 0.05 * e) for m in range(2) for e in range(1, 4)]
    assert charts.fine_tune_png(history, 1.70, 1.65).startswith(PNG_MAGIC)
    assert charts.fine_tune_png([], None, None).startswith(PNG_MAGIC)
    broken = [replace(history[0], val_loss=math.nan)]
    assert charts.fine_tune_png(broken, 1.70, math.nan).startswith(PNG_MAGIC)


def test_history_chart_is_a_png() -> None:
    points = [charts.VersionPoint(1, 1.7, 1.68, True, False), charts.VersionPoint(2, 1.68, None, False, False),
              charts.VersionPoint(3, 1.68, 1.62, True, True)]
    assert charts.history_png(points).startswith(PNG_MAGIC)
    assert charts.history_png([]).startswith(PNG_MAGIC)


def test_the_bot_does_not_import_matplotlib_until_a_chart_is_drawn() -> None:
    """Start-up memory: importing every module of the bot must not pull matplotlib in."""
    import subprocess
    code = ("import sys, bot.app, bot.cogs.generate, bot.cogs.retrain, bot.services.charts; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
