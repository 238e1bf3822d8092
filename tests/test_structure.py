"""The shape the code keeps: data flows one way between modules, no module keeps live state in a global,
and training never puts a model in use by itself."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fraud_app"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The fraud_app modules this file imports, at any depth of the file (deferred imports count too)."""
    name, out = _module(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("fraud_app"):
                out.add(base)
                out.update(f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("fraud_app"))
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        # A package's __init__ only gathers its modules; an edge to it stands for the module named after it.
        graph[name] = {m for m in _imports(path) if m in files and m != name and not name.startswith(m + ".")}
    return graph


def test_the_module_graph_has_no_cycles():
    graph, state, path = _graph(), {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != "open", "import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt])
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert "fraud_app.application" in graph and graph["fraud_app.application"]  # the walk saw real edges


def test_the_layers_point_one_way():
    graph = _graph()
    below_app = [m for m in graph if m.startswith("fraud_app.store") or m in {f"fraud_app.{n}" for n in (
        "config", "simulate", "importer", "features", "detector", "training", "registry", "scoring", "live",
        "jobs", "metrics", "monitoring", "backtest", "access", "users", "curves")}]
    faces = ("fraud_app.api", "fraud_app.ui", "fraud_app.cli", "fraud_app.desktop", "fraud_app.application")
    for module in below_app:
        assert not {m for m in graph[module] if m.startswith(faces)}, f"{module} reaches up to {graph[module]}"
    for module in graph:  # ui.app serves both faces on one server; the views know nothing of REST
        if module.startswith("fraud_app.ui") and module != "fraud_app.ui.app":
            assert "fraud_app.api" not in graph[module], f"{module} reaches into the REST face"


LIVE = {"Lock", "RLock", "Event", "Thread", "ThreadPoolExecutor", "Queue", "OrderedDict", "defaultdict", "deque",
        "Store", "FraudApp", "LiveScorer", "Jobs", "Metrics", "DriftJobs"}
CONTAINERS = {"dict", "list", "set"}  # empty when called without arguments: a cache to be filled


def test_no_module_keeps_live_state_in_a_global():
    """No `global` rebinding, and no module-level lock, pool, cache (an empty container filled later) or live
    object: those belong to the application object."""
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Global)], f"{path.name} rebinds a global"
        for node in tree.body:  # module level only
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if value is None:
                continue
            called = value.func if isinstance(value, ast.Call) else None
            name = getattr(called, "attr", None) or getattr(called, "id", None)
            empty = (isinstance(value, (ast.Dict, ast.List, ast.Set)) and not ast.unparse(value).strip("{}[]() ")
                     or name in CONTAINERS and not value.args and not value.keywords)
            assert not (empty or name in LIVE), \
                f"{path.relative_to(PACKAGE)}: module-level {ast.unparse(node)[:60]} holds live state"


def test_training_never_promotes():
    source = (PACKAGE / "training.py").read_text()
    assert "promote" not in source and "set_active" not in source
