"""The package's layers (README, Architecture): imports only run downward.

Every ``dropsvc.*`` import in the package's source, including those inside
functions, is read with ``ast`` and must name a module of the same layer or
of a layer below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dropsvc"
# top to bottom, as the README draws them; a module belongs to the first prefix that matches it
LAYERS = (
    ("dropsvc.run",),
    ("dropsvc.http",),
    ("dropsvc.obs",),
    ("dropsvc.checkout",),
    ("dropsvc.payments",),
    ("dropsvc.ledger",),
    ("dropsvc.drops", "dropsvc.buyers", "dropsvc.tickets", "dropsvc.fairness", "dropsvc.challenges"),
    ("dropsvc.config", "dropsvc.logs", "dropsvc.threads"),
    ("dropsvc._engine",),
)
FACADES = {"dropsvc", "dropsvc.__main__"}  # the package's door: `from dropsvc import Engine`, `python -m dropsvc`


def layer_of(module: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return index
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS and to the README's drawing")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [name for name in names if name == "dropsvc" or name.startswith("dropsvc.")]


def test_every_module_has_a_layer_and_imports_only_downward():
    upward = []
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 40
    for path in modules:
        name = module_name(path)
        if name in FACADES:
            continue
        own = layer_of(name)
        for target in imported(ast.parse(path.read_text(), str(path))):
            if target == "dropsvc" or layer_of(target) < own:
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_an_upward_import_is_caught():
    tree = ast.parse("def f():\n    from dropsvc.http.app import create_app\n")
    assert [layer_of(name) for name in imported(tree)] == [1]
    assert layer_of("dropsvc.http.app") < layer_of("dropsvc.ledger")
