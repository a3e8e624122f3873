"""Build hook: generate the Open Inference Protocol gRPC stubs from the kept ``.proto``.

Runs ``grpc_tools.protoc`` (``grpcio-tools`` is a build requirement) for every build, editable
installs included, into ``src/mainspring/serving/oip/generated/``. That package is gitignored and
shipped in wheels as a build artifact: the stubs are never written by hand nor committed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = Path("mainspring", "serving", "oip", "generated")
PROTO = Path("src", "mainspring", "serving", "oip", "open_inference_grpc.proto")


def generate(root: Path) -> Path:
    """Write the stubs under ``root/src/PACKAGE`` and return that directory."""
    from grpc_tools import protoc  # build requirement

    out = root / "src" / PACKAGE
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # place the proto at the package path so the generated imports are absolute and correct
        staged = Path(tmp, PACKAGE, PROTO.name)
        staged.parent.mkdir(parents=True)
        shutil.copyfile(root / PROTO, staged)
        include = Path(protoc.__file__).parent / "_proto"
        status = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{tmp}",
                f"-I{include}",
                f"--python_out={root / 'src'}",
                f"--pyi_out={root / 'src'}",
                f"--grpc_python_out={root / 'src'}",
                str(staged),
            ]
        )
    if status != 0:
        raise RuntimeError(f"grpc_tools.protoc failed on {PROTO} (status {status})")
    (out / "__init__.py").write_text(
        '"""Generated from open_inference_grpc.proto by hatch_build.py; do not edit."""\n',
        encoding="utf-8",
    )
    return out


class CustomBuildHook(BuildHookInterface):  # type: ignore[misc]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        generate(Path(self.root))
