"""The library's shape: `evaluation` never imports Prefect, and its modules import each other
without cycles (every import counts, module-level or inside a function)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIBRARY = REPO / "evaluation"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The evaluation modules `name` imports (a name imported from a package counts as its submodule
    when there is one)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_library_has_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert sum(len(v) for v in graph.values()) > 40  # the checker sees the imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_importing_every_library_module_imports_no_prefect():
    names = sorted(_modules())
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "assert 'prefect' not in sys.modules, sorted(m for m in sys.modules if m.startswith('prefect'))[:5]\n"
            "print(len(sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_render_worker_drawing_scorecards_loads_no_matplotlib_pandas_or_gx():
    """What a render worker's fork server imports (reporting/warm.py), and a scorecard's charts, stay
    light: matplotlib is for the city summary's charts only."""
    code = ("import sys\n"
            "import evaluation.reporting.warm\n"
            "from evaluation.reporting import charts\n"
            "charts.radar_svg({'labels': ['A', 'B', 'C'], 'county': [1, 2, 3], 'zone_avg': [3, 2, 1],"
            " 'county_label': 'x', 'zone_label': 'y'})\n"
            "charts.trend_svg({'years': [2023], 'series': [{'label': 'x', 'values': [1]}]})\n"
            "heavy = [m for m in ('matplotlib', 'pandas', 'great_expectations', 'scipy') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_evaluation_is_declared_once_as_named_steps():
    """Issue 16: the evaluation's shape is data (operations.EVALUATE): each step takes only what is
    given or made before it, and the annual flow runs that same table (its costly steps as tasks)."""
    from evaluation.operations import EVALUATE, run_steps

    known = {"intakes", "catalogue", "year", "history", "version", "run_date", "sample", "incomplete", "code"}
    for step in EVALUATE:
        assert set(step.inputs) <= known, step
        known.add(step.output)
    assert [s.name for s in EVALUATE] == ["values", "gep", "score", "analyse", "info", "plan"]
    assert "operations.run_steps(operations.EVALUATE" in (REPO / "flows" / "annual.py").read_text(encoding="utf-8")
    try:
        run_steps(EVALUATE, catalogue=None)
    except ValueError as exc:
        assert "step values needs intakes" in str(exc)
    else:
        raise AssertionError("a step without its inputs must be refused")


def _top_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_web_app_calls_the_library_and_the_library_knows_no_web_framework():
    """`web/` handles requests and pages only: it imports the portal's operations, accounts, the catalogue,
    the form generator and the workbench's read-back of issued versions, never pandas, GX, Prefect or the
    scoring; `evaluation` imports no web framework."""
    web_framework = ("fastapi", "starlette", "uvicorn", "itsdangerous", "python_multipart", "web")
    for path in LIBRARY.rglob("*.py"):
        bad = [m for m in _top_imports(path) if m.split(".")[0] in web_framework]
        assert not bad, (path, bad)
    allowed = {"evaluation", "evaluation.portal", "evaluation.accounts", "evaluation.catalogue", "evaluation.ledger",
               "evaluation.resources", "evaluation.ingest.forms", "evaluation.validation", "flows.events",
               # the workbench: issued versions read back (read only), the runs and distribution it starts
               "evaluation.workbench", "evaluation.versions", "evaluation.fsutil", "evaluation.reporting",
               "evaluation.operations", "evaluation.distribution.recipients"}
    for path in (REPO / "web").rglob("*.py"):
        for module in _top_imports(path):
            root = module.split(".")[0]
            assert root not in ("pandas", "numpy", "great_expectations", "prefect"), (path, module)
            if root in ("evaluation", "flows"):
                assert module in allowed, (path, module)
