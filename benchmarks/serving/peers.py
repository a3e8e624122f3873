"""The peer servers of the serving benchmark: MLServer, BentoML and ``mlflow models serve``.

Each peer runs from its own virtualenv under ``benchmarks/.venvs/<peer>`` (gitignored), created
here with the machine's python3.11 and pip when missing (or when its requirements changed). Each
serves the same LightGBM model file (``model.txt``) on 127.0.0.1, pinned to the same LightGBM
version as the Mainspring environment so that the answers can be compared exactly.

- ``mlserver``: MLServer 1.7.1 with ``mlserver-lightgbm``, default settings (``parallel_workers``
  left at its default, 1; adaptive batching off, the default), OIP body.
- ``mlserver-tuned``: the same with ``parallel_workers`` = the worker count of the run (one
  inference process per core) and adaptive batching off (its batching adds a wait per request;
  the issue's tuned figure was taken this way).
- ``bentoml-default``: BentoML 1.4, a service (``bento_service.py``) wrapping the same booster
  with an OIP-shaped JSON endpoint (same body and same response shape as the others), with no
  ``workers`` setting: BentoML's default, one API-server process.
- ``bentoml``: the same with ``workers`` = the worker count of the run.
- ``mlflow-default``: ``mlflow models serve`` of the model saved with
  ``mlflow.lightgbm.save_model`` (pyfunc), ``--env-manager local``, no ``--workers``: mlflow's
  default, one uvicorn worker; its natural body (``dataframe_split`` with the 20 named columns)
  on ``/invocations``.
- ``mlflow``: the same with ``--workers`` = the worker count of the run.

The README's "Peer configurations" says where in each peer's source its default comes from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENVS = HERE.parent / ".venvs"
FEATURES = [f"f{i}" for i in range(20)]

#: what each peer's virtualenv holds (the LightGBM pin is added from the caller's version)
REQUIREMENTS: dict[str, list[str]] = {
    # MLServer 1.7.1's workers crash with uvloop 0.22 or newer
    "mlserver": ["mlserver==1.7.1", "mlserver-lightgbm==1.7.1", "uvloop<0.22"],
    "bentoml": ["bentoml>=1.4,<1.5"],
    "mlflow": ["mlflow>=3,<4"],
}


def python311() -> str:
    found = shutil.which("python3.11")
    if found is None:
        sys.exit("python3.11 is missing: the peers' virtualenvs are made with it")
    return found


def ensure_venv(peer: str, lightgbm_version: str) -> Path:
    """The virtualenv of ``peer`` (``mlserver``, ``bentoml``, ``mlflow``), made when missing."""
    venv = VENVS / peer
    wanted = [*REQUIREMENTS[peer], f"lightgbm=={lightgbm_version}"]
    stamp = venv / "requirements.json"
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return venv
    if not (venv / "bin" / "python").exists():
        print(f"creating {venv} ...", flush=True)
        subprocess.run([python311(), "-m", "venv", str(venv)], check=True)
    print(f"installing {' '.join(wanted)} into {venv} ...", flush=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *wanted],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    stamp.write_text(json.dumps(wanted))
    return venv


def package_version(venv: Path, package: str) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def oip_body(row: list[float]) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 20], "data": row}]}


def oip_score(answer: dict[str, Any]) -> float:
    data = answer["outputs"][0]["data"]
    while isinstance(data, list):
        data = data[0]
    return float(data)


def mlflow_score(answer: dict[str, Any]) -> float:
    value = answer["predictions"][0]
    return float(value[0] if isinstance(value, list) else value)


@dataclass
class Server:
    """How to start one server and talk to it."""

    name: str
    #: the command line, given the port
    command: Callable[[int], list[str]]
    path: str
    body: dict[str, Any]
    score: Callable[[dict[str, Any]], float]
    cwd: Path
    env: dict[str, str]
    #: what it is, for the report (versions, settings)
    about: str


def mlserver(
    work: Path, model: Path, row: list[float], workers: int, lgb: str, *, tuned: bool
) -> Server:
    venv = ensure_venv("mlserver", lgb)
    name = "mlserver-tuned" if tuned else "mlserver"
    root = work / name
    (root / "bench").mkdir(parents=True, exist_ok=True)
    shutil.copy(model, root / "bench" / "model.txt")
    (root / "bench" / "model-settings.json").write_text(json.dumps({
        "name": "bench",
        "implementation": "mlserver_lightgbm.LightGBMModel",
        "parameters": {"uri": "./model.txt", "version": "1"},
    }))  # fmt: skip
    about = f"MLServer {package_version(venv, 'mlserver')}"
    about += f", parallel_workers={workers}" if tuned else ", default settings"

    def command(port: int) -> list[str]:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "http_port": port,
            "grpc_port": port + 1,
            "metrics_port": port + 2,
        }
        if tuned:
            settings["parallel_workers"] = workers
        (root / "settings.json").write_text(json.dumps(settings))
        return [str(venv / "bin" / "mlserver"), "start", str(root)]

    return Server(name, command, "/v2/models/bench/infer", oip_body(row), oip_score, root,
                  {}, about)  # fmt: skip


def bentoml(
    work: Path, model: Path, row: list[float], workers: int, lgb: str, *, tuned: bool
) -> Server:
    venv = ensure_venv("bentoml", lgb)
    name = "bentoml" if tuned else "bentoml-default"
    setting = f"workers={workers}" if tuned else "default settings (no workers setting)"
    about = f"BentoML {package_version(venv, 'bentoml')}, {setting}, OIP-shaped JSON API"

    def command(port: int) -> list[str]:
        return [str(venv / "bin" / "bentoml"), "serve", "bento_service:Bench",
                "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip

    env = {"MODEL_FILE": str(model), "BENTOML_DO_NOT_TRACK": "true",
           "BENTOML_HOME": str(work / "bentoml-home")}  # fmt: skip
    if tuned:  # without it, bento_service.py leaves workers at BentoML's default
        env["BENCH_WORKERS"] = str(workers)
    return Server(name, command, "/v2/models/bench/infer", oip_body(row), oip_score, HERE,
                  env, about)  # fmt: skip


def mlflow(
    work: Path, model: Path, row: list[float], workers: int, lgb: str, *, tuned: bool
) -> Server:
    venv = ensure_venv("mlflow", lgb)
    saved = work / "mlflow-model"
    if not saved.exists():
        subprocess.run(
            [str(venv / "bin" / "python"), str(HERE / "mlflow_export.py"), str(model), str(saved)],
            check=True,
        )
    name = "mlflow" if tuned else "mlflow-default"
    setting = f"--workers {workers}" if tuned else "no --workers (its default)"
    about = (
        f"mlflow {package_version(venv, 'mlflow')} models serve, {setting}, "
        "pyfunc, dataframe_split body"
    )

    def command(port: int) -> list[str]:
        line = [str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(saved),
                "--host", "127.0.0.1", "--port", str(port), "--env-manager", "local"]  # fmt: skip
        return [*line, "--workers", str(workers)] if tuned else line

    body = {"dataframe_split": {"columns": FEATURES, "data": [row]}}
    env = {"MLFLOW_TRACKING_URI": (work / "mlruns").as_uri(), "PATH": f"{venv / 'bin'}:"
           + os.environ.get("PATH", "")}  # fmt: skip
    return Server(name, command, "/invocations", body, mlflow_score, work, env, about)


PEERS = ("mlserver", "mlserver-tuned", "bentoml-default", "bentoml", "mlflow-default", "mlflow")


def make(peer: str, work: Path, model: Path, row: list[float], workers: int, lgb: str) -> Server:
    if peer in ("mlserver", "mlserver-tuned"):
        return mlserver(work, model, row, workers, lgb, tuned=peer == "mlserver-tuned")
    if peer in ("bentoml", "bentoml-default"):
        return bentoml(work, model, row, workers, lgb, tuned=peer == "bentoml")
    if peer in ("mlflow", "mlflow-default"):
        return mlflow(work, model, row, workers, lgb, tuned=peer == "mlflow")
    raise ValueError(f"unknown peer {peer!r}; choose from {', '.join(PEERS)}")
