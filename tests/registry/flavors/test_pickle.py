"""The pickle flavor never unpickles without the caller's trust."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from mainspring.errors import GovernanceError, InvalidInputError, SignatureError
from mainspring.records import FeatureSpec, Signature
from mainspring.registry.flavors import flavor_for_file, get_flavor

FLAVOR = get_flavor("pickle")
RNG = np.random.RandomState(3)
X = RNG.normal(size=(200, 3))
Y = X @ np.array([1.0, -2.0, 0.5])
SIGNATURE = Signature(tuple(FeatureSpec(n, "float64") for n in ("a", "b", "c")))


class Payload:
    """Unpickling this creates ``marker``: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_refused_without_trust_before_anything_is_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    data = pickle.dumps(Payload(marker), protocol=4)

    assert flavor_for_file(data, "model.pkl") is FLAVOR
    prepared = FLAVOR.prepare_file(data, "model.pkl")
    assert prepared.n_features == 0 and prepared.signature.inputs == ()
    with pytest.raises(GovernanceError, match=r"plain pickle.*trusted=True"):
        FLAVOR.load(data, SIGNATURE)
    assert not marker.exists()

    pickle.loads(data).close()  # the payload is real: unpickling does create the marker
    assert marker.exists()


def test_trusted_pickle_predicts() -> None:
    from sklearn.linear_model import Ridge

    model = Ridge().fit(X, Y)
    loaded = FLAVOR.load(pickle.dumps(model), SIGNATURE, trusted=True)
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-12)
    assert loaded.predict({"a": [1.0], "b": [2.0], "c": [3.0]}).shape == (1,)


def test_cloudpickled_local_class_predicts() -> None:
    cloudpickle = pytest.importorskip("cloudpickle")

    class Doubler:  # local: cloudpickle stores the class by value
        def predict(self, rows: np.ndarray) -> np.ndarray:
            return rows.sum(axis=1) * 2

    loaded = FLAVOR.load(cloudpickle.dumps(Doubler()), SIGNATURE, trusted=True)
    np.testing.assert_allclose(loaded.predict(X), X.sum(axis=1) * 2)


def test_joblib_file_predicts_and_truncation_is_caught() -> None:
    joblib = pytest.importorskip("joblib")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X, (Y > 0).astype(int))
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    data = buffer.getvalue()

    assert flavor_for_file(data, "model.joblib") is FLAVOR
    assert FLAVOR.prepare_file(data, "model.joblib").n_features == 0
    loaded = FLAVOR.load(data, SIGNATURE, trusted=True)
    np.testing.assert_allclose(loaded.predict(X), model.predict_proba(X)[:, 1], rtol=1e-12)
    with pytest.raises(InvalidInputError, match=r"model\.joblib"):
        FLAVOR.prepare_file(data[: len(data) // 2], "model.joblib")


def test_trusted_load_still_needs_a_signature() -> None:
    with pytest.raises(SignatureError, match="signature"):
        FLAVOR.load(pickle.dumps([1, 2]), Signature(inputs=()), trusted=True)


def test_signature_must_match_a_model_that_knows_its_features() -> None:
    import pandas as pd
    from sklearn.linear_model import Ridge

    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = Ridge().fit(frame, Y)
    wrong = Signature(tuple(FeatureSpec(n, "float64") for n in ("a", "b", "zzz")))
    with pytest.raises(SignatureError, match="zzz"):
        FLAVOR.load(pickle.dumps(model), wrong, trusted=True)
    reordered = Signature(tuple(reversed(SIGNATURE.inputs)))
    loaded = FLAVOR.load(pickle.dumps(model), reordered, trusted=True)
    np.testing.assert_allclose(loaded.predict(X[:, ::-1]), model.predict(frame), rtol=1e-12)


def test_object_without_predict_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="neither predict_proba nor predict"):
        FLAVOR.load(pickle.dumps({"not": "a model"}), SIGNATURE, trusted=True)


def test_missing_module_is_named() -> None:
    data = b"\x80\x02cno_such_module_xyz\nThing\nq\x00."
    assert FLAVOR.prepare_file(data, "model.pkl").n_features == 0
    with pytest.raises(InvalidInputError, match="no_such_module_xyz"):
        FLAVOR.load(data, SIGNATURE, trusted=True)


def test_corrupt_and_foreign_bytes() -> None:
    assert not FLAVOR.sniff(b"tree\nversion=v4\n", "model.txt")
    assert not FLAVOR.sniff(b"\x80\x05", "model.pkl")
    with pytest.raises(InvalidInputError, match=r"model\.pkl"):
        FLAVOR.prepare_file(b"\x80\x05\xff\xfe\xfd.", "model.pkl")
    with pytest.raises(InvalidInputError, match="not a pickle"):
        FLAVOR.prepare_file(b"just text", "model.pkl")


def test_live_objects_are_never_pickled() -> None:
    from sklearn.linear_model import Ridge

    model = Ridge().fit(X, Y)
    assert not FLAVOR.accepts(model)
    assert FLAVOR.needs_trust
    with pytest.raises(InvalidInputError, match="does not pickle"):
        FLAVOR.prepare(model)
