"""The one-way flow of DESIGN.md, checked on the source by path, so a new module is checked the
moment it exists (no hand-kept list to forget to update):

- ``model/`` imports NumPy and the standard library only (never asyncio, sqlite3, discord, bot);
- nothing under ``bot/services/`` imports discord;
- nothing under ``bot/cogs/`` or ``bot/ui/`` imports ``model`` (cogs call services);
- nothing under ``bot/`` imports NumPy (the bot does no math).
"""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every absolute module an import statement names, relative ones resolved to absolute."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                found.add(node.module)
    return found


def roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


def sources(folder: str) -> list[Path]:
    paths = sorted((ROOT / folder).rglob("*.py"))
    assert paths, f"no sources under {folder}/"
    return paths


@pytest.mark.parametrize("path", sources("model"), ids=lambda p: str(p.relative_to(ROOT)))
def test_model_imports_numpy_and_the_standard_library_only(path: Path) -> None:
    foreign = roots(path) - sys.stdlib_module_names - {"numpy", "__future__", "model"}
    assert not foreign, f"{path.name} imports {foreign}"
    assert not roots(path) & {"asyncio", "sqlite3", "discord", "bot", "aiosqlite"}, path.name


@pytest.mark.parametrize("path", sources("bot/services"), ids=lambda p: str(p.relative_to(ROOT)))
def test_services_never_import_discord(path: Path) -> None:
    assert "discord" not in roots(path), f"service {path} imports discord"


@pytest.mark.parametrize("path", sources("bot/cogs") + sources("bot/ui"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_discord_layer_never_imports_the_model(path: Path) -> None:
    assert "model" not in roots(path), f"{path} imports model: call a service instead"


@pytest.mark.parametrize("path", sources("bot"), ids=lambda p: str(p.relative_to(ROOT)))
def test_bot_does_no_math(path: Path) -> None:
    assert "numpy" not in roots(path), f"{path} imports NumPy: call the model library instead"


def test_the_checker_sees_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that cannot fail is no check: a cog importing the model is caught."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    cog = tmp_path / "bot" / "cogs" / "bad.py"
    cog.parent.mkdir(parents=True)
    cog.write_text("from model import score_name\nfrom ..services import registry\n")
    assert roots(cog) == {"model", "bot"}
    assert "bot.services" in imported_modules(cog)
