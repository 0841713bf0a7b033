"""The package's layers import only downward, and no module imports itself in a circle.

Read from the source with ``ast`` (every ``import``, at module level or inside a function):
a new upward import or a new circle fails here with the import named.  The layers, lowest
first, are the folders docs/architecture.md describes.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "livecomposer"

#: Lowest first; a module may import its own layer and the layers before it.
LAYERS = [
    ("base", ["livecomposer", "livecomposer.paths"]),
    ("rt", ["livecomposer.rt"]),
    ("ports", ["livecomposer.ports"]),
    ("model", ["livecomposer.model"]),
    ("kernel", ["livecomposer.kernel"]),
    ("audio", ["livecomposer.audio"]),
    ("plugins", ["livecomposer.plugins"]),
    ("visual", ["livecomposer.visual"]),
    ("app", ["livecomposer.app"]),
    ("judge", ["livecomposer.judge"]),
    ("bench", ["livecomposer.bench"]),
    ("commands", ["livecomposer.commands"]),
    ("cli", ["livecomposer.cli", "livecomposer.__main__"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``name`` imports (a ``from X import y`` where ``X.y`` is a
    module counts as importing ``X.y``)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import livecomposer.x.y` names a module or a parent
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def layer_of(name: str) -> int:
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    names = set(modules)
    return {name: imports_of(name, path, names) for name, path in modules.items()}


def test_every_module_belongs_to_a_layer() -> None:
    assert [m for m in all_modules() if layer_of(m) < 0] == []


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = []
    for name, targets in graph().items():
        for target in targets:
            if target == "livecomposer":  # the package itself: __version__ and the like
                continue
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert upward == []


def test_no_import_circle() -> None:
    imports = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(imports[name]):
            if target == "livecomposer":
                continue
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(imports):
        if name not in state:
            visit(name)
    assert [" -> ".join(c) for c in circles] == []


def test_the_checker_sees_an_upward_import_and_a_circle(tmp_path) -> None:
    """The reader itself: a relative import that climbs a layer, and a circle, are found."""
    modules = {"livecomposer.kernel.engine", "livecomposer.app.session", "livecomposer.kernel.clock"}
    engine = tmp_path / "livecomposer" / "kernel" / "engine.py"
    engine.parent.mkdir(parents=True)
    engine.write_text("from ..app import session\nfrom .clock import Clock\n")
    assert imports_of("livecomposer.kernel.engine", engine, modules) == {"livecomposer.app.session", "livecomposer.kernel.clock"}
    assert layer_of("livecomposer.app.session") > layer_of("livecomposer.kernel.engine")
