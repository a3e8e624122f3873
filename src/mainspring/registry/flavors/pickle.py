"""Plain pickle, cloudpickle and joblib files of any object with ``predict_proba`` or ``predict``.

Unpickling can run arbitrary code, so this flavor never unpickles without the caller's trust:

* ``load(..., trusted=False)`` raises :class:`GovernanceError` before reading a byte of the pickle;
* ``prepare_file`` only walks the pickle's opcodes (``pickletools``, which executes nothing) to
  reject corrupt or truncated files. It cannot see inside, so ``Prepared.n_features`` is 0 and the
  signature has no inputs: the registry must be given the caller's signature (built directly as
  ``Signature(inputs=())`` because ``Signature.from_dict`` refuses empty inputs);
* live objects are never turned into pickles (``accepts`` is always False): scikit-learn objects go
  through the skops-based ``sklearn`` flavor.

Loaded objects predict as in the ``sklearn`` flavor: ``predict_proba`` when they have it (column 1
for two classes), else ``predict``. Joblib files (which interleave raw array bytes with the pickle
stream) are read with joblib when it is installed.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import platform
from typing import Any, ClassVar

from mainspring.errors import GovernanceError, InvalidInputError, SignatureError
from mainspring.records import Signature
from mainspring.registry.flavors import _library as lib
from mainspring.registry.flavors.base import Flavor, LoadedModel, Prepared
from mainspring.registry.flavors.sklearn import estimator_model

#: joblib writes numpy arrays through this wrapper, followed by their raw bytes
_JOBLIB_MARK = b"NumpyArrayWrapper"


class PickleFlavor(Flavor):
    """Pickled objects, loaded only when the caller trusts their source."""

    name: ClassVar[str] = "pickle"
    extra: ClassVar[str] = "sklearn"
    needs_trust: ClassVar[bool] = True

    def available(self) -> bool:
        return True

    def accepts(self, obj: object) -> bool:
        return False

    def sniff(self, data: bytes, filename: str) -> bool:
        return len(data) > 2 and data[0] == 0x80 and 2 <= data[1] <= 5 and data.endswith(b".")

    def prepare(self, obj: object) -> Prepared:
        raise InvalidInputError(
            f"Mainspring does not pickle live objects (a {type(obj).__name__} was given): "
            "register scikit-learn models as they are (saved with skops) or a native model file",
            field="model",
        )

    def prepare_file(self, data: bytes, filename: str, *, trusted: bool = False) -> Prepared:
        label = lib.file_label(filename)
        if not self.sniff(data, filename):
            raise lib.bad_file(
                label, "it is not a pickle of protocol 2 or later, or it is truncated"
            )
        if _JOBLIB_MARK not in data:  # joblib's raw array bytes cannot be walked as opcodes
            try:
                for _ in pickletools.genops(data):
                    pass
            except Exception as exc:  # ValueError for truncated or malformed streams
                raise lib.bad_file(label, f"the pickle is corrupt ({lib.first_line(exc)})") from exc
        return Prepared(
            data=data,
            n_features=0,
            signature=Signature(inputs=()),
            library_versions=self.library_versions(),
        )

    def load(self, data: bytes, signature: Signature, *, trusted: bool = False) -> LoadedModel:
        if not trusted:
            raise GovernanceError(
                "the model is a plain pickle, which can run arbitrary code when loaded; "
                "load it with trusted=True only if you trust its source"
            )
        if not signature.input_names:
            raise SignatureError(
                "a pickled model does not reveal its inputs: register it with a signature",
                field="signature.inputs",
            )
        obj = _unpickle(data)
        if not any(callable(getattr(obj, m, None)) for m in ("predict_proba", "predict")):
            raise InvalidInputError(
                f"the pickle holds a {type(obj).__name__}, which has neither predict_proba nor "
                "predict",
                field="file",
            )
        return estimator_model(self.name, obj, signature)

    def library_versions(self) -> dict[str, str]:
        found = {"python": platform.python_version()}
        found.update(lib.versions("numpy", "scikit-learn", "cloudpickle", "joblib"))
        return found


def _unpickle(data: bytes) -> Any:
    """Unpickle trusted ``data``: with joblib when it holds joblib's arrays, else pickle."""
    what = "the stored artifact"
    try:
        if _JOBLIB_MARK in data and lib.installed("joblib"):
            joblib = lib.require(
                "joblib", package="joblib", extra="sklearn", purpose="Joblib files"
            )
            return joblib.load(io.BytesIO(data))
        return pickle.loads(data)  # noqa: S301 - the caller declared the source trusted
    except ModuleNotFoundError as exc:
        raise InvalidInputError(
            f"{what} needs the module {exc.name!r}, which is not installed", field="file"
        ) from exc
    except Exception as exc:  # UnpicklingError, EOFError, AttributeError...
        raise lib.bad_file(what, f"the pickle cannot be loaded ({lib.first_line(exc)})") from exc
