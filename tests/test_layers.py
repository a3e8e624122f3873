"""The layering of DESIGN.md, enforced: imports point down, domain packages stay apart."""

from __future__ import annotations

import ast
from pathlib import Path

import mainspring

ROOT = Path(mainspring.__file__).parent

FOUNDATION, DOMAIN, RUNTIME, EDGE = range(4)
LAYERS = {
    "errors": FOUNDATION,
    "records": FOUNDATION,
    "config": FOUNDATION,
    "storage": FOUNDATION,
    "events": FOUNDATION,
    "access": FOUNDATION,
    "prometheus": FOUNDATION,
    "registry": DOMAIN,
    "features": DOMAIN,
    "explain": DOMAIN,
    "audit": DOMAIN,
    "monitoring": DOMAIN,
    "serving": RUNTIME,
    "pipelines": RUNTIME,
    "project": EDGE,
    "cli": EDGE,
    "api": EDGE,
    "ui": EDGE,
    "demo": EDGE,
    "__init__": EDGE,
}


def unit_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def imported_units(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "mainspring":
                names = [f"mainspring.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "mainspring" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(p) for p in ROOT.rglob("*.py")}
    assert units <= set(LAYERS) | {"py"}, sorted(units - set(LAYERS))


def test_imports_point_down_and_domains_stay_apart() -> None:
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        source = unit_of(path)
        for target in imported_units(ast.parse(path.read_text(encoding="utf-8"))):
            if target == source or target == "__version__":
                continue
            if target not in LAYERS:
                problems.append(f"{path.relative_to(ROOT)} imports unknown mainspring.{target}")
            elif LAYERS[target] > LAYERS[source]:
                problems.append(f"{path.relative_to(ROOT)} ({source}) imports up into {target}")
            elif LAYERS[source] == LAYERS[target] == DOMAIN:
                problems.append(
                    f"{path.relative_to(ROOT)}: domain {source} imports domain {target}"
                )
    assert not problems, "\n".join(problems)
