"""Layers point one way (docs/architecture.md): settings and resources at the bottom, pure logic
above them, Dagster assets above that, `orchestration/` only assembles."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("assets", "orchestration", "synthetic")


def _imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(folder: str) -> dict[str, set[str]]:
    return {
        str(p.relative_to(ROOT)): _imports(p)
        for p in sorted((ROOT / folder).rglob("*.py"))
    }


def _offenders(modules: dict[str, set[str]], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    out = {}
    for path, names in modules.items():
        bad = sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden))
        if bad:
            out[path] = bad
    return out


def test_assets_never_import_orchestration() -> None:
    assert _offenders(_modules("assets"), ("orchestration",)) == {}


def test_core_imports_nothing_else_of_the_project() -> None:
    core = _modules("assets/core")
    assert core, "assets/core is the bottom layer"
    others = tuple(f"assets.{p.name}" for p in (ROOT / "assets").iterdir()
                   if p.name not in ("core", "__init__.py", "__pycache__"))
    others = tuple(o.removesuffix(".py") for o in others)
    assert _offenders(core, ("orchestration", "synthetic", *others)) == {}


def test_synthetic_generator_is_independent_of_the_pipeline() -> None:
    """The generator only needs the contract: it must not import the pipeline or Dagster."""
    gen = _modules("synthetic")
    assert _offenders(gen, ("orchestration", "dagster", "dagster_dbt")) == {}
    allowed = {"assets.contract"}
    assert {
        p: sorted(n for n in names if n.startswith("assets") and n not in allowed)
        for p, names in gen.items()
        if any(n.startswith("assets") and n not in allowed for n in names)
    } == {}


def test_pure_logic_modules_do_not_import_dagster() -> None:
    """Only asset modules (`*_assets.py`, `dbt_assets.py`, `exports.py`, `early_warning.py`)
    and the resources touch Dagster; rule compilers, loaders and reports stay plain Python."""
    asset_modules = {"assets/exports.py", "assets/early_warning.py", "assets/core/metadata.py",
                     "assets/core/resources.py", "assets/core/dbt_project.py",
                     "assets/core/partitions.py"}
    logic = {
        p: names for p, names in _modules("assets").items()
        if not p.endswith("_assets.py") and p not in asset_modules
    }
    assert _offenders(logic, ("dagster", "dagster_dbt")) == {}
