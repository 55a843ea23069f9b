"""The pipeline's layers, read from its source: what may import what, and no import circle.

    protocol/   the run protocol (log, state, transitions, leases, compensation, cancel, admission, kinds registry)
    training/   the leg a fine-tuning kind shares (start the fine-tune, follow it)
    delivery/   the leg a model-making kind ends with (deploy, import, TTL, retention)
    kinds/<k>/  one run kind each: imports the protocol, the legs and its own folder, never another kind
    timer/ rest/ entry.py   the doors: the timer's tick, the webhook's REST API, the FC entry points

Generic code (everything but `kinds/`) never imports a kind's module: it reaches kinds through
`protocol/kinds.py`'s registry, by name. Every import counts, a lazy one inside a function too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PIPELINE = Path(__file__).resolve().parents[2] / "shared" / "bailian_flow" / "pipeline"
PACKAGE = "bailian_flow.pipeline"
LAYERS = {"protocol": 0, "training": 1, "delivery": 1, "kinds": 2, "timer": 3, "rest": 3, "entry": 4}


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PIPELINE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def _imports() -> dict[str, set[str]]:
    modules = {_module_of(path): path for path in PIPELINE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from package import module` imports the module; `from module import name` the module itself.
                names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            else:
                continue
            targets |= {name for name in names if name in modules and name != module}
        graph[module] = targets
    return graph


def _area(module: str) -> str:
    rest = module[len(PACKAGE) + 1 :] if module != PACKAGE else ""
    return rest.split(".")[0] if rest else ""


def _kind_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[3] if len(parts) > 3 and parts[2] == "kinds" else None


def test_layers_only_import_downwards_and_generic_code_never_imports_a_kind() -> None:
    wrong = []
    for module, targets in _imports().items():
        area = _area(module)
        for target in targets:
            target_area = _area(target)
            if target_area == "kinds" and _kind_of(target) is not None and _kind_of(target) != _kind_of(module):
                wrong.append(f"{module} imports the kind module {target}")
            elif area in LAYERS and target_area in LAYERS and LAYERS[target_area] > LAYERS[area]:
                wrong.append(f"{module} ({area}) imports {target} ({target_area}), a higher layer")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_pipeline_has_no_import_circle() -> None:
    graph = _imports()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, "\n".join(" -> ".join(circle) for circle in circles)


def test_the_checks_see_what_they_check() -> None:
    # A guard against a parser that finds nothing: the pipeline's own imports are there to be read.
    graph = _imports()
    assert f"{PACKAGE}.protocol.transitions" in graph[f"{PACKAGE}.protocol.steps"]
    assert f"{PACKAGE}.kinds.batch.batch_state" in graph[f"{PACKAGE}.kinds.batch.stages"]
    assert _kind_of(f"{PACKAGE}.kinds.batch.stages") == "batch" and _area(f"{PACKAGE}.entry") == "entry"
