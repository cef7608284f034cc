"""The shape of ``har/`` (docs/architecture.md): packages by concern, imports pointing down the layers,
no import cycle, small modules. Read from the source with ``ast``: nothing is imported or run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HAR = Path(__file__).resolve().parents[1] / "har"

# a package may import its own layer's leaves and anything on a lower layer, never a higher one
LAYERS = {
    "har": 0,  # the shared leaves: har/__init__, errors, atomic, metrics, sensors, plots
    "har.data": 1,
    "har.models": 1,
    "har.train": 2,
    "har.tracking": 3,
    "har.predict": 4,
    "har.report": 4,
    "har.tune": 5,
    "har.cli": 6,
}
NO_RAY_NO_MLFLOW = ("har.data", "har.models", "har.train", "har.predict", "har.report")
MAX_TOP_LEVEL = 8
MAX_LINES = 500


def _module(path: Path) -> str:
    parts = path.relative_to(HAR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for every import statement of the file."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "har":  # `from har import x`: x may be a module
                found += [(f"har.{alias.name}", id(node) in top) for alias in node.names]
            else:
                found.append((node.module, id(node) in top))
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and ".".join(parts[:2]) in LAYERS else "har"


SOURCES = {_module(p): p for p in sorted(HAR.rglob("*.py"))}


def test_at_most_eight_modules_stay_directly_in_har() -> None:
    top = sorted(p.name for p in HAR.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top


def test_no_module_over_500_lines() -> None:
    long = {name: n for name, p in SOURCES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_every_subpackage_has_a_layer() -> None:
    packages = {_module(p) for p in HAR.glob("*/__init__.py")}
    assert packages <= set(LAYERS), packages - set(LAYERS)


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_imports_point_down_the_layers(module: str) -> None:
    own = _package(module)
    for imported, _ in _imports(SOURCES[module]):
        if imported.split(".")[0] != "har":
            if own in NO_RAY_NO_MLFLOW:
                assert imported.split(".")[0] not in ("ray", "mlflow"), f"{module} imports {imported}"
            continue
        target = _package(imported)
        if target == own:
            continue
        assert LAYERS[target] < LAYERS[own] or (target == "har" and own == "har"), (
            f"{module} (layer {LAYERS[own]}) imports {imported} (layer {LAYERS[target]})"
        )


def test_no_import_cycle_between_modules() -> None:
    """Module-level imports form no cycle (a function-level import would hide one: they are counted too)."""
    graph = {
        name: {imp for imp, _ in _imports(path) if imp in SOURCES and imp != name}
        for name, path in SOURCES.items()
    }
    graph["har.models.registry"].discard(
        "har.models.zoo"
    )  # the zoo registers every architecture on first use
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_function_level_imports_only_in_the_cli() -> None:
    """Library modules import at the top; only the CLI defers imports (``har --help`` stays fast), and
    torchvision is imported where image models and image data use it: its import loads torch._dynamo,
    about 2 s of the start of every command and trial worker that never touches an image."""
    allowed = {("har.models.vision", "torchvision"), ("har.train.images", "torchvision.transforms")}
    hidden = [
        (name, imp)
        for name, path in SOURCES.items()
        if not name.startswith("har.cli")
        for imp, at_top in _imports(path)
        if not at_top and (name, imp) not in allowed and imp != "__future__"
    ]
    assert not hidden, hidden
