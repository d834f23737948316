"""The one-way flow of DESIGN.md, checked on the source: model/ is NumPy and the standard
library only; bot/ services never import discord; bot/ does no NumPy math."""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"store", "migrations", "errors", "registry", "training", "training_jobs", "training_run",
            "training_settings", "generation", "cpu_priority"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_model_imports_numpy_and_the_standard_library_only():
    for path in (ROOT / "model").glob("*.py"):
        foreign = imported_roots(path) - sys.stdlib_module_names - {"numpy", "__future__"}
        assert not foreign, f"{path.name} imports {foreign}"
        assert not imported_roots(path) & {"asyncio", "sqlite3", "discord", "bot"}, path.name


def test_services_never_import_discord_and_bot_never_imports_numpy():
    for path in (ROOT / "bot").rglob("*.py"):
        roots = imported_roots(path)
        assert "numpy" not in roots, f"{path} does math: call the model library instead"
        if path.stem in SERVICES and path.parent.name == "bot":
            assert "discord" not in roots, f"service {path.name} imports discord"
