"""How the CLI prints a model version (``models show``, ``models register``...)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from mainspring.records import ModelVersion

console = Console(highlight=False)


def importance_line(v: ModelVersion, top: int = 5) -> str:
    """The version's ``top`` most important features, or how to compute them."""
    imp = v.importance
    if imp is None:
        return f"- (compute it: mainspring models importance {v.ref} --data FILE)"
    shown = ", ".join(f"{name} {value:.4g}" for name, value in list(imp.values.items())[:top])
    more = f", … {len(imp.values) - top} more" if len(imp.values) > top else ""
    return f"{shown}{more} (mean |SHAP|, {imp.method}, {imp.rows:,} rows)"


def background_line(v: ModelVersion) -> str:
    """The background sample stored for explanations, or ``-``."""
    imp = v.importance
    if imp is None or imp.background_digest is None:
        return "-"
    return f"{imp.background_rows} rows, sha256:{imp.background_digest[:12]}…"


def show_version(v: ModelVersion) -> None:
    """Print every fact of a version as a two-column table."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, Any]] = [
        ("model", f"{v.name}/{v.version}"),
        ("aliases", ", ".join(v.aliases) or "-"),
        ("approval", v.approval.value),
        ("flavor", v.flavor),
        ("digest", f"sha256:{v.digest}"),
        ("size", f"{v.size:,} bytes"),
        ("inputs", ", ".join(f"{f.name}:{f.dtype}" for f in v.signature.inputs)),
        ("outputs", ", ".join(f"{f.name}:{f.dtype}" for f in v.signature.outputs) or "-"),
        ("metrics", ", ".join(f"{k}={val:.6g}" for k, val in v.metrics.items()) or "-"),
        ("tags", ", ".join(f"{k}={val}" for k, val in v.tags.items()) or "-"),
        ("libraries", ", ".join(f"{k} {val}" for k, val in v.library_versions.items())),
        (
            "training data",
            (
                f"{v.training_data.rows:,} rows, {v.training_data.fingerprint[:16]}…"
                if v.training_data
                else "-"
            ),
        ),
        ("importance", importance_line(v)),
        ("background", background_line(v)),
        ("lineage", json.dumps(v.lineage.to_dict())),
        ("code version", v.code_version or "-"),
        ("registered", f"{v.registered_at:%Y-%m-%d %H:%M:%S} UTC by {v.registered_by}"),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)
