"""Settings: defaults, mainspring.yaml, environment overrides, and errors that name the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mainspring.config import ApiSettings, S3Settings, Settings, load_settings
from mainspring.errors import ConfigError


def write_config(project: Path, data: Any) -> None:
    text = data if isinstance(data, str) else yaml.safe_dump(data)
    (project / "mainspring.yaml").write_text(text, encoding="utf-8")


def config_error(project: Path, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(project, environ=environ or {})
    return info.value


# --- defaults and values ---------------------------------------------------------------------


def test_defaults_keep_everything_under_the_project(tmp_path: Path) -> None:
    project = tmp_path / "credit-risk"
    project.mkdir()
    s = load_settings(project, environ={})
    root = project.resolve()
    assert s.project_dir == root
    assert s.name == "credit-risk"
    assert s.metadata == f"sqlite:///{root}/.mainspring/metadata.db"
    assert s.artifacts == f"file://{root}/.mainspring/artifacts"
    assert s.s3 == S3Settings()
    assert s.api == ApiSettings(host="127.0.0.1", port=8000, max_upload_mb=512)


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    write_config(tmp_path, "# nothing configured yet\n")
    assert load_settings(tmp_path, environ={}) == load_settings(tmp_path / ".", environ={})
    assert load_settings(tmp_path, environ={}).name == tmp_path.name


def test_yaml_values(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "name": "credit",
            "metadata": "postgresql://ms:secret@db:5432/mainspring",
            "artifacts": "s3://models/credit",
            "s3": {
                "endpoint_url": "http://127.0.0.1:9000",
                "region": "eu-west-1",
                "access_key_id": "AK",
                "secret_access_key": "SK",
            },
            "api": {"host": "0.0.0.0", "port": 9000, "max_upload_mb": 64},
        },
    )
    s = load_settings(tmp_path, environ={})
    assert s.name == "credit"
    assert s.metadata == "postgresql://ms:secret@db:5432/mainspring"
    assert s.artifacts == "s3://models/credit"
    assert s.s3 == S3Settings("http://127.0.0.1:9000", "eu-west-1", "AK", "SK")
    assert s.api == ApiSettings("0.0.0.0", 9000, 64)


def test_null_values_mean_defaults(tmp_path: Path) -> None:
    write_config(tmp_path, "name:\napi:\n  port:\n")
    s = load_settings(tmp_path, environ={})
    assert s.name == tmp_path.name
    assert s.api.port == 8000


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    write_config(tmp_path, {"metadata": "sqlite:///from-file.db", "s3": {"region": "eu-west-1"}})
    s = load_settings(
        tmp_path,
        environ={
            "MAINSPRING_METADATA": "postgresql://db/ms",
            "MAINSPRING_S3__ENDPOINT_URL": "http://127.0.0.1:5000",
            "MAINSPRING_API__PORT": "9100",
            "MAINSPRING_NAME": "from-env",
        },
    )
    assert s.metadata == "postgresql://db/ms"
    assert s.s3.endpoint_url == "http://127.0.0.1:5000"
    assert s.s3.region == "eu-west-1"  # the file's other values stay
    assert s.api.port == 9100
    assert s.name == "from-env"


def test_unrelated_environment_variables_are_ignored(tmp_path: Path) -> None:
    environ = {
        "HOME": "/root",
        "PATH": "/usr/bin",
        "MAINSPRING_PROJECT": str(tmp_path),
        "MAINSPRING_TOKEN": "t0ken",
        "MAINSPRING_USER": "ann",
    }
    assert load_settings(tmp_path, environ=environ) == load_settings(tmp_path, environ={})


def test_the_process_environment_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAINSPRING_ARTIFACTS", "s3://bucket/from-env")
    assert load_settings(tmp_path).artifacts == "s3://bucket/from-env"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("metadata", "sqlite:///data/m.db", "sqlite:///{root}/data/m.db"),
        ("metadata", "sqlite:///../shared/m.db", "sqlite:///{parent}/shared/m.db"),
        ("metadata", "sqlite:////abs/m.db", "sqlite:////abs/m.db"),
        ("metadata", "sqlite://", "sqlite://"),
        ("metadata", "sqlite:///:memory:", "sqlite:///:memory:"),
        ("metadata", "postgresql://h/db", "postgresql://h/db"),
        ("artifacts", "file://arts", "file://{root}/arts"),
        ("artifacts", "arts/models", "file://{root}/arts/models"),
        ("artifacts", "file:///abs/arts", "file:///abs/arts"),
        ("artifacts", "s3://b/p", "s3://b/p"),
    ],
)
def test_relative_paths_are_resolved_against_the_project(
    tmp_path: Path, key: str, value: str, expected: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    write_config(project, {key: value})
    got = getattr(load_settings(project, environ={}), key)
    assert got == expected.format(root=project.resolve(), parent=tmp_path.resolve())


def test_relative_paths_do_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    write_config(project, {"metadata": "sqlite:///m.db"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_settings(project, environ={}).metadata == f"sqlite:///{project.resolve()}/m.db"
    monkeypatch.chdir(project)
    assert load_settings(".", environ={}).metadata == f"sqlite:///{project.resolve()}/m.db"


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = load_settings(tmp_path, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.metadata = "sqlite://"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.api.port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.s3.region = "x"  # type: ignore[misc]


# --- errors name the key ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"nmae": "x"}, "nmae", "unknown setting 'nmae'; known: name, metadata"),
        ({"s3": {"bucket": "b"}}, "s3.bucket", "known: s3.endpoint_url"),
        ({"api": {"port": "eighty"}}, "api.port", "must be an integer"),
        ({"api": {"port": 80.5}}, "api.port", "must be an integer"),
        ({"api": {"port": True}}, "api.port", "must be an integer"),
        ({"api": {"max_upload_mb": [1]}}, "api.max_upload_mb", "must be an integer"),
        ({"api": 8000}, "api", "must be a mapping"),
        ({"s3": "http://x"}, "s3", "must be a mapping"),
        ({"name": ["a", "b"]}, "name", "must be a string"),
        ({"metadata": {"url": "x"}}, "metadata", "must be a string"),
        ({"metadata": "sqlite:///a\0b"}, "metadata", "metadata"),
        ({"artifacts": "dir\0name"}, "artifacts", "artifacts"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, data: Any, key: str, words: str) -> None:
    write_config(tmp_path, data)
    error = config_error(tmp_path)
    assert error.key == key
    assert words in str(error)


def test_infinite_port(tmp_path: Path) -> None:
    write_config(tmp_path, "api:\n  port: .inf\n")
    assert config_error(tmp_path).key == "api.port"


def test_bad_yaml(tmp_path: Path) -> None:
    write_config(tmp_path, "name: [unclosed\n")
    error = config_error(tmp_path)
    assert "not valid YAML" in str(error)
    assert error.key is not None and error.key.endswith("mainspring.yaml")


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "mainspring.yaml").write_bytes(b"name: caf\xe9\n")
    assert config_error(tmp_path).key == str(tmp_path.resolve() / "mainspring.yaml")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_the_file_must_hold_a_mapping(tmp_path: Path, text: str) -> None:
    write_config(tmp_path, text)
    assert "must hold a mapping" in str(config_error(tmp_path))


@pytest.mark.parametrize(
    "var",
    [
        "MAINSPRING_NOPE",
        "MAINSPRING_S3__BUCKET",
        "MAINSPRING_S3",  # a group, not a value
        "MAINSPRING_NAME__X",
        "MAINSPRING_API__PORT__X",
        "MAINSPRING_",
    ],
)
def test_environment_variables_naming_no_setting(tmp_path: Path, var: str) -> None:
    error = config_error(tmp_path, {var: "x"})
    assert error.key == var
    assert var in str(error)


def test_bad_environment_values_name_the_key(tmp_path: Path) -> None:
    assert config_error(tmp_path, {"MAINSPRING_API__PORT": "eighty"}).key == "api.port"


def test_environment_into_a_non_mapping(tmp_path: Path) -> None:
    write_config(tmp_path, {"api": 5})
    assert config_error(tmp_path, {"MAINSPRING_API__PORT": "1"}).key == "api"


# --- junk never escapes as anything but ConfigError ------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.dates()
    | st.sampled_from(["sqlite:///x.db", "s3://b/p", "file://a", "8000", "sqlite:///\0"])
)
junk = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=8) | st.integers(), children, max_size=3)
    ),
    max_leaves=10,
)


# plausible values are drawn more often than pure junk, so that every check is reached
strings = (
    st.text(max_size=20)
    | st.sampled_from(["sqlite:///x.db", "sqlite:///\0", "s3://b/p", "file://a", "a\0b", ""])
    | junk
)
integers = (
    st.integers()
    | st.floats()
    | st.sampled_from(["8000", " 12 ", "1e3", "-1", "0x10", "\0", True])
    | junk
)


def optional(**values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=values)


configs = (
    optional(
        name=strings,
        metadata=strings,
        artifacts=strings,
        s3=optional(
            endpoint_url=strings, region=strings, access_key_id=strings, secret_access_key=strings
        )
        | junk,
        api=optional(host=strings, port=integers, max_upload_mb=integers) | junk,
    )
    | junk
    | st.dictionaries(st.text(max_size=8), junk, max_size=3)
)
ENV_NAMES = [
    "MAINSPRING_METADATA",
    "MAINSPRING_ARTIFACTS",
    "MAINSPRING_API__PORT",
    "MAINSPRING_S3__REGION",
]
environs = st.dictionaries(st.sampled_from(ENV_NAMES), st.text(max_size=12), max_size=2) | (
    st.dictionaries(
        st.text(max_size=12).map(lambda s: "MAINSPRING_" + s), st.text(max_size=12), max_size=1
    )
)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(config=configs, environ=environs)
def test_junk_gives_settings_or_a_config_error(
    tmp_path: Path, config: Any, environ: dict[str, str]
) -> None:
    write_config(tmp_path, config)
    try:
        s = load_settings(tmp_path, environ=environ)
    except ConfigError as exc:
        assert str(exc)
    else:
        assert isinstance(s, Settings)
        assert "://" in s.metadata and "://" in s.artifacts
        assert isinstance(s.api.port, int) and not isinstance(s.api.port, bool)
        assert all(isinstance(v, str | None) for v in dataclasses.astuple(s.s3))


def test_the_event_log_setting(tmp_path: Path) -> None:
    assert load_settings(tmp_path, environ={}).events == (
        f"sqlite:///{(tmp_path / '.mainspring' / 'events.db').resolve()}"
    )
    env = {"MAINSPRING_EVENTS": "kafka://127.0.0.1:9092"}
    assert load_settings(tmp_path, environ=env).events == "kafka://127.0.0.1:9092"
    (tmp_path / "mainspring.yaml").write_text("events: sqlite:///ev/log.db\n", encoding="utf-8")
    assert (
        load_settings(tmp_path, environ={}).events
        == f"sqlite:///{(tmp_path / 'ev/log.db').resolve()}"
    )


def test_online_store_setting(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert load_settings(tmp_path, environ={}).online == f"sqlite:///{root}/.mainspring/online.db"
    env = {"MAINSPRING_ONLINE": "redis://127.0.0.1:6379/0"}
    assert load_settings(tmp_path, environ=env).online == "redis://127.0.0.1:6379/0"
    (tmp_path / "mainspring.yaml").write_text("online: sqlite:///state/online.db\n")
    assert load_settings(tmp_path, environ={}).online == f"sqlite:///{root}/state/online.db"


# --- audit (the decision log) ----------------------------------------------------------------


def test_audit_settings(tmp_path: Path) -> None:
    default = load_settings(tmp_path, environ={}).audit
    assert (dict(default.personal), default.durability, default.segments) == ({}, "fsync", ())
    assert default.key_file == tmp_path.resolve() / ".mainspring" / "audit.key"
    (tmp_path / "mainspring.yaml").write_text(
        yaml.safe_dump(
            {
                "audit": {
                    "personal": {"ssn": "drop", "email": "hash"},
                    "durability": "process",
                    "key_file": "secrets/audit.key",
                    "segments": ["region"],
                }
            }
        ),
        encoding="utf-8",
    )
    audit = load_settings(tmp_path, environ={"MAINSPRING_AUDIT__SEGMENTS": "region,channel"}).audit
    assert dict(audit.personal) == {"ssn": "drop", "email": "hash"}
    assert audit.durability == "process"
    assert audit.key_file == tmp_path.resolve() / "secrets" / "audit.key"
    assert audit.segments == ("region", "channel")
    with pytest.raises(TypeError):
        audit.personal["ssn"] = "hash"  # type: ignore[index]


@pytest.mark.parametrize(
    ("audit", "key"),
    [
        ({"personal": {"ssn": "encrypt"}}, "audit.personal.ssn"),
        ({"personal": ["ssn"]}, "audit.personal"),
        ({"durability": "sometimes"}, "audit.durability"),
        ({"segments": [1]}, "audit.segments"),
        ({"keyfile": "x"}, "audit.keyfile"),
        ("fsync", "audit"),
    ],
)
def test_bad_audit_settings_name_the_key(tmp_path: Path, audit: Any, key: str) -> None:
    (tmp_path / "mainspring.yaml").write_text(yaml.safe_dump({"audit": audit}), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, environ={})
    assert caught.value.key == key
