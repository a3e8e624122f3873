"""Shared fixtures: real servers (PostgreSQL, S3 on moto) started once per session on 127.0.0.1.

Tests that use them are marked ``service``. A server that cannot be started makes its tests skip
with the reason, except under ``CI=true``, where it is a failure: in CI a skipped service test is
a failed one (see :func:`require_service` and the ``pytest_runtest_makereport`` hook below).

Fixtures:

- ``postgres_url`` (session): ``postgresql://postgres@127.0.0.1:PORT/mainspring_test``
- ``fresh_postgres_url`` (function): the URL of a new, empty database, dropped afterwards
- ``s3_url`` (function): an :class:`servers.S3Location` (``url``, ``storage_options``) under a
  fresh prefix of a bucket on the moto server
- ``redis_url`` (function): ``redis://127.0.0.1:PORT/0`` of a session Redis server, emptied
  before the test
- ``redis_unix_url`` (function): ``redis+unix:///…/redis.sock?db=0``, the same session Redis
  server over its unix-domain socket, emptied before the test
- ``durable_redis_server`` (function): a ``servers.RedisServer`` of the test's own with an
  append-only file, which the test may ``kill()`` and ``restart()``
- ``promtool`` (session): the path of Prometheus's ``promtool``
- ``kafka_bootstrap`` (session): ``127.0.0.1:PORT`` of a one-node Apache Kafka (KRaft), its jars
  fetched with Maven and cached; ``kafka_server`` is the ``servers.KafkaServer`` itself
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import sys
import threading
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest


def _load_servers() -> ModuleType:
    # tests are not a package (--import-mode=importlib): load the sibling module by path
    name = "mainspring_test_servers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("servers.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


servers = _load_servers()

#: Fixtures that start a real server; a test using one is marked ``service`` automatically.
SERVICE_FIXTURES = frozenset(
    {
        "postgres_server",
        "postgres_url",
        "fresh_postgres_url",
        "s3_server",
        "s3_url",
        "redis_server",
        "redis_url",
        "redis_unix_url",
        "durable_redis_server",
        "promtool",
        "kafka_server",
        "kafka_bootstrap",
    }
)

_startup_failures: list[str] = []


def in_ci() -> bool:
    """Whether we run in CI (``CI=true``), where every service test must really run."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def require_service(name: str, reason: str) -> NoReturn:
    """Give up on a test that needs ``name``: skip it locally, fail it under ``CI=true``."""
    message = f"{name} is not available: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: service tests must run)", pytrace=False)
    pytest.skip(message)


_running: list[Any] = []


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    # a CI time-out or `timeout` ends pytest with SIGTERM, which skips finalizers and atexit
    for server in _running:
        server.stop()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _start(name: str, server: Any, request: pytest.FixtureRequest) -> Any:
    # stop at session end whatever happens, at interpreter exit, and on SIGTERM
    request.addfinalizer(server.stop)
    atexit.register(server.stop)
    _running.append(server)
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return server.start()
    except servers.ServiceUnavailable as exc:
        reason = str(exc)
    server.stop()
    _startup_failures.append(f"{name}: {reason}")  # with the log's tail, in the summary
    require_service(name, reason.splitlines()[0])


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Any:
    """A running throw-away PostgreSQL cluster (``servers.PostgresServer``)."""
    server = _start("PostgreSQL", servers.PostgresServer(), request)
    server.create_database("mainspring_test")
    return server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: Any) -> str:
    """``postgresql://postgres@127.0.0.1:PORT/mainspring_test``, shared by the whole session."""
    return str(postgres_server.url("mainspring_test"))


@pytest.fixture
def fresh_postgres_url(postgres_server: Any) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def s3_server(request: pytest.FixtureRequest) -> Any:
    """A running moto S3 server with one bucket (``servers.MotoServer``)."""
    return _start("S3 (moto_server)", servers.MotoServer(), request)


@pytest.fixture
def s3_url(s3_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """A fresh ``s3://bucket/prefix-<uuid>`` on the moto server, as an ``S3Location``.

    For the test's duration the environment keeps S3 clients away from real AWS: explicit test
    credentials, no instance-metadata lookups, no profiles or config files of the user.
    """
    for var, value in servers.aws_env_overrides(tmp_path).items():
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    return s3_server.location()


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> Any:
    """A running throw-away Redis server (``servers.RedisServer``)."""
    return _start("Redis", servers.RedisServer(), request)


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    """``redis://127.0.0.1:PORT/0``, emptied before the test."""
    redis_server.flush()
    return str(redis_server.url())


@pytest.fixture
def redis_unix_url(redis_server: Any) -> str:
    """``redis+unix:///…/redis.sock?db=0`` of the session server, emptied before the test."""
    redis_server.flush()
    return str(redis_server.unix_url())


@pytest.fixture
def durable_redis_server(request: pytest.FixtureRequest) -> Any:
    """A Redis server of the test's own, with an append-only file synced on every write, that the
    test may ``kill()`` and ``restart()`` without losing acknowledged writes."""
    return _start("Redis", servers.RedisServer(durable=True), request)


@pytest.fixture(scope="session")
def promtool() -> str:
    """The path of Prometheus's ``promtool`` (installed by scripts/ensure-services)."""
    import shutil

    path = shutil.which("promtool")
    if path is None:
        require_service("promtool", "not on PATH (Debian package prometheus)")
    return path


@pytest.fixture(scope="session")
def kafka_server(request: pytest.FixtureRequest) -> Any:
    """A running one-node Apache Kafka in KRaft mode (``servers.KafkaServer``)."""
    if importlib.util.find_spec("confluent_kafka") is None:
        require_service(
            "Apache Kafka", "confluent-kafka is not installed: pip install -e '.[kafka]'"
        )
    return _start("Apache Kafka", servers.KafkaServer(), request)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_server: Any) -> str:
    """``127.0.0.1:PORT`` of the session's Kafka broker."""
    return str(kafka_server.bootstrap)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.service)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI=true, a skipped ``service`` test (however it was skipped) is a failed one."""
    report = yield
    if (
        in_ci()
        and report.skipped
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("service") is not None
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"service test skipped under CI=true, which counts as a failure: {reason}"
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _startup_failures:
        terminalreporter.section("test servers that could not start")
        for failure in _startup_failures:
            terminalreporter.write_line(failure)
