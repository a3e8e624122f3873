"""The sklearn flavor's trust rules for skops files, and what it reads off estimators."""

from __future__ import annotations

import operator

import numpy as np
import pytest

from mainspring.errors import GovernanceError, InvalidInputError, SignatureError
from mainspring.records import FeatureSpec, Signature
from mainspring.registry.flavors import get_flavor

pytest.importorskip("sklearn")
pytest.importorskip("skops")
pd = pytest.importorskip("pandas")

from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

FLAVOR = get_flavor("sklearn")
RNG = np.random.RandomState(5)
X = RNG.normal(size=(200, 3))
Y = X @ np.array([1.0, 2.0, -1.0])


def test_unknown_types_need_trust() -> None:
    model = make_pipeline(FunctionTransformer(operator.neg), Ridge()).fit(X, Y)
    prepared = FLAVOR.prepare(model)
    with pytest.raises(GovernanceError, match=r"_operator\.neg.*trusted=True"):
        FLAVOR.load(prepared.data, prepared.signature)
    with pytest.raises(GovernanceError, match=r"_operator\.neg"):
        FLAVOR.prepare_file(prepared.data, "model.skops")
    loaded = FLAVOR.load(prepared.data, prepared.signature, trusted=True)
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-12)


def test_builtin_eval_is_not_trusted_but_abs_is() -> None:
    risky = make_pipeline(FunctionTransformer(eval), Ridge())
    risky.steps[-1][1].fit(X, Y)  # fitted in parts: eval cannot run on arrays
    risky.steps[0][1].fit(X)
    data = FLAVOR.prepare(risky).data
    with pytest.raises(GovernanceError, match=r"builtins\.eval"):
        FLAVOR.load(data, Signature(tuple(FeatureSpec(f"f{i}", "float64") for i in range(3))))

    fine = make_pipeline(FunctionTransformer(abs), Ridge()).fit(X, Y)
    prepared = FLAVOR.prepare(fine)
    loaded = FLAVOR.load(prepared.data, prepared.signature)
    np.testing.assert_allclose(loaded.predict(X), fine.predict(X), rtol=1e-12)


def test_feature_names_and_params() -> None:
    frame = pd.DataFrame(X, columns=["x", "y", "z"])
    model = LogisticRegression(C=0.5).fit(frame, (Y > 0).astype(int))
    prepared = FLAVOR.prepare(model)
    assert prepared.named and prepared.signature.input_names == ("x", "y", "z")
    assert prepared.params["C"] == 0.5
    assert all(
        v is None or isinstance(v, str | int | float | bool) for v in prepared.params.values()
    )
    renamed = Signature(tuple(FeatureSpec(n, "float64") for n in ("x", "y", "w")))
    with pytest.raises(SignatureError, match="'w'"):
        FLAVOR.load(prepared.data, renamed)


def test_multiclass_outputs_are_named_by_class() -> None:
    labels = np.array(["low", "mid", "high"])[np.digitize(Y, [-1.0, 1.0])]
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, labels)
    prepared = FLAVOR.prepare(model)
    names = [spec.name for spec in prepared.signature.outputs]
    assert names == [f"probability_{c}" for c in model.classes_]
    loaded = FLAVOR.load(prepared.data, prepared.signature)
    np.testing.assert_allclose(loaded.predict(X), model.predict_proba(X), rtol=1e-12)


def test_unfitted_and_non_models_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="not fitted"):
        FLAVOR.prepare(Ridge())
    assert not FLAVOR.accepts(StandardScaler())
    assert FLAVOR.accepts(Ridge())


def test_zip_without_schema_is_not_skops() -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("other.txt", "hello")
    assert not FLAVOR.sniff(buffer.getvalue(), "model.zip")
    with pytest.raises(InvalidInputError, match="skops"):
        FLAVOR.prepare_file(buffer.getvalue(), "model.zip")
