"""The layers of docs/ARCHITECTURE.md hold (issue 26): `core/` is pure and imports none of
the packages above it, `policy/` works over an abstract environment and imports neither
Docker's machinery nor the commands, and no modules import each other in a circle.

Read from the source (every import statement, those inside functions included), so a lazy
import cannot slip past."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "afpbisect"

# package -> the packages of afpbisect it must never import
FORBIDDEN = {
    "core": ("machinery", "commands", "policy", "reports", "synthetic", "cli", "cli_options"),
    "policy": ("machinery", "commands", "reports", "cli", "cli_options"),
}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        yield ".".join(parts), path


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    """The afpbisect modules `path` imports: `from pkg import mod` is `pkg.mod` when that is
    a module, else `pkg` (a name defined in it)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    modules = {name for name, _p in _modules()}
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                       for a in node.names)
    return {m for m in out if m == "afpbisect" or m.startswith("afpbisect.")}


def test_core_and_policy_import_nothing_above_them():
    wrong = []
    for name, path in _modules():
        parts = name.split(".")
        if len(parts) < 2 or parts[1] not in FORBIDDEN:
            continue
        for imported in _imports(path):
            bits = imported.split(".")
            if len(bits) > 1 and bits[1] in FORBIDDEN[parts[1]]:
                wrong.append(f"{name} imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles_between_modules():
    """Among the imports a module runs when it is loaded (a function's lazy import runs
    later, on purpose)."""
    modules = dict(_modules())
    # A module's own packages are loading already when it is imported: not an edge.
    graph = {name: {m for m in _imports(path, top_level_only=True)
                    if m in modules and m != name and not name.startswith(m + ".")}
             for name, path in modules.items()}
    state: dict[str, int] = {}   # 1 on the path being walked, 2 done
    circles = []

    def walk(node, path):
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                circles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in state:
                walk(dep, path + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert not circles, "\n".join(circles)
