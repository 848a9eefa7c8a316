"""The shape of planner/ (README "Where things are"): packages on floors that import only downward, no import
circle, no import hidden inside a function except the lazy optional dependencies listed here, no module over 400
lines, and nothing that needs a GPU stack (torch, pynvml, streamlit, kernels_bench) anywhere in planner/."""

from __future__ import annotations

import ast
from pathlib import Path

PLANNER = Path(__file__).resolve().parent.parent / "planner"
# floors, lowest first: a module may import its own package and those below it
FLOORS = ("base", "model", "hardware", "deploy", "perf", "serving", "sizing", "report", "compare", "")  # "" = top level
# imports inside functions that are allowed, each with why: (importing module, imported module or package prefix)
LAZY = {
    ("planner.report.build", "kaleido"): "PNG export is optional (kaleido drives Debian chromium; --no-png skips it)",
    # each command loads only its own modules: `estimate` starts in ~0.25 s, all commands' modules (pandas for the
    # sizing tables, plotly for the report) take ~0.7 s on this 2-core machine
    ("planner.cli", "planner."): "one command's modules per run",
    ("planner.bench", "planner."): "it measures the planner's import time",
    # the `files` extra, paid only by the input that needs it: gguf (40 ms of import) for a scenario whose weights are
    # a .gguf file, huggingface_hub (120-150 ms, httpx) for a model given as a Hugging Face id
    ("planner.model.weights_file", "planner.model.gguf_file"): "gguf only for a .gguf checkpoint",
    ("planner.model.hub", "huggingface_hub"): "huggingface_hub only for a Hub id",
}
FORBIDDEN = ("torch", "pynvml", "streamlit", "kernels_bench", "dashboard")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    rel = path.relative_to(PLANNER.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _floor(module: str) -> int:
    parts = module.split(".")
    pkg = parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in FLOORS) else ""
    return FLOORS.index(pkg) if pkg in FLOORS else len(FLOORS) - 1


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for every import of one file."""
    tree = ast.parse(path.read_text())
    here = _module_name(path)
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_func: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((a.name, in_func) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative import: resolve against this package
                    base = here.split(".")[: -child.level] if not path.name == "__init__.py" else here.split(".")
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                out.append((mod, in_func))
                # `from planner.x import y` where y is a submodule
                for a in child.names:
                    sub = f"{mod}.{a.name}"
                    if (PLANNER.parent / (sub.replace(".", "/") + ".py")).exists():
                        out.append((sub, in_func))
            visit(child, nested)

    visit(tree, False)
    return out


def _graph() -> dict[str, list[tuple[str, bool]]]:
    return {_module_name(p): _imports(p) for p in sorted(PLANNER.rglob("*.py"))}


def test_imports_run_only_downward():
    bad = []
    for mod, imports in _graph().items():
        for target, _ in imports:
            if target.startswith("planner.") and _floor(target) > _floor(mod):
                bad.append(f"{mod} -> {target}")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_circle():
    graph = {m: {t for t, _ in imps if t.startswith("planner") and t != m} for m, imps in _graph().items()}
    # a package's __init__ re-exporting its modules is not a circle of code; skip edges into __init__ from inside
    state: dict[str, int] = {}
    cycles: list[str] = []

    def dfs(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if nxt.count(".") < node.count(".") and node.startswith(nxt + "."):
                continue  # a module importing its own package's public face
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif not state.get(nxt):
                dfs(nxt, stack + [nxt])
        state[node] = 2

    for m in graph:
        if not state.get(m):
            dfs(m, [m])
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_no_import_inside_a_function_but_optional_dependencies():
    def allowed(mod: str, target: str) -> bool:
        return any(mod == m and (target == t or (t.endswith(".") and target.startswith(t))) for m, t in LAZY)

    bad = [f"{mod} imports {target} inside a function" for mod, imports in _graph().items()
           for target, in_func in imports if in_func and not allowed(mod, target)]
    assert not bad, "\n".join(bad)


def test_planner_needs_no_gpu_stack():
    bad = [f"{mod} imports {target}" for mod, imports in _graph().items() for target, _ in imports
           if target.split(".")[0] in FORBIDDEN]
    assert not bad, "\n".join(bad)


def test_modules_stay_small():
    big = [f"{p.relative_to(PLANNER.parent)}: {n} lines" for p in sorted(PLANNER.rglob("*.py"))
           if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not big, "\n".join(big)
