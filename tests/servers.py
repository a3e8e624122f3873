"""Real servers for the service tests: a throw-away PostgreSQL cluster, a moto S3 server, a Redis
server, and a one-node Apache Kafka (KRaft) run from jars that Maven fetches once into a cache.

Each server runs as a child process in its own process group, bound to 127.0.0.1 on a free port,
with its files and logs in a temporary directory. ``start()`` raises :class:`ServiceUnavailable`
(with the tail of the server's log) when the server cannot be found or started; ``stop()`` ends the
whole process group and removes the directory, and is safe to call twice.

``tests/conftest.py`` turns these into session fixtures; nothing here depends on pytest.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

#: Seconds a server may take to accept connections (generous: CI machines are slow and loaded).
START_TIMEOUT_S = 90.0
#: Seconds a server may take to shut down cleanly before its process group is killed.
STOP_TIMEOUT_S = 20.0
#: Attempts on fresh ports when the chosen port was taken between choosing and binding it.
PORT_ATTEMPTS = 3

HOST = "127.0.0.1"


class ServiceUnavailable(Exception):
    """A server cannot be started here; the message says why (and shows the log's tail)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


#: the ``mainspring`` command of the interpreter running the tests
MAINSPRING = Path(sys.executable).with_name("mainspring")


@contextlib.contextmanager
def mainspring_serve(
    project: Path, *options: str, ready: Callable[[int], bool]
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """``mainspring -C project serve --port PORT *options`` as a subprocess in a session of its
    own, handed over once ``ready(PORT)`` (within 120 s, or the test fails with the server's log);
    on leaving, the whole session is killed (SIGKILL) if it still runs. Yields the process, its
    HTTP port and its log file (``project/serve.log``)."""
    port = free_port()
    log = project / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(MAINSPRING), "-C", str(project), "serve", "--port", str(port), *options],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not ready(port):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield proc, port, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file (empty when there is none)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_until(
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    what: str,
    log: Path,
    timeout: float = START_TIMEOUT_S,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise _StartFailed(f"{what} exited with status {proc.returncode} during start-up", log)
        if ready():
            return
        if time.monotonic() > deadline:
            raise _StartFailed(f"{what} did not accept connections within {timeout:.0f} s", log)
        time.sleep(0.2)


class _StartFailed(ServiceUnavailable):
    def __init__(self, message: str, log: Path) -> None:
        self.log = log
        self.log_text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        super().__init__(f"{message}; last lines of {log}:\n{tail(log)}")

    @property
    def port_taken(self) -> bool:
        text = self.log_text.lower()
        return "address already in use" in text or "could not bind" in text


def _stop_group(proc: subprocess.Popen[bytes] | None, first: signal.Signals) -> None:
    """Signal a child's process group, wait, and kill the group if it does not go."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT_S)
    # children of the leader (PostgreSQL backends, werkzeug workers) may outlive it
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def find_postgres_bin() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``: the newest ``/usr/lib/postgresql/*/bin``
    (Debian, Ubuntu), else the one on ``PATH``."""

    def version(path: Path) -> tuple[int, ...]:
        name = path.parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit()) or (0,)

    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    for path in sorted(candidates, key=version, reverse=True):
        if (path / "postgres").exists():
            return path
    found = shutil.which("initdb")
    if found is not None:
        bindir = Path(found).resolve().parent
        if (bindir / "postgres").exists():
            return bindir
    return None


def _postgres_tmp() -> str:
    """A temporary directory that the ``postgres`` user can reach and whose path is short enough
    for a Unix socket (about 100 bytes); ``/tmp`` when ``$TMPDIR`` is not."""
    base = Path(tempfile.gettempdir()).resolve()
    reachable = all(os.stat(p).st_mode & 0o001 for p in (base, *base.parents))
    return str(base) if reachable and len(str(base)) < 60 else "/tmp"


class PostgresServer:
    """A throw-away PostgreSQL cluster: ``initdb`` in a temporary directory, trust auth."""

    def __init__(self) -> None:
        self.port = 0
        self.workdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._run_as: dict[str, Any] = {}

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def start(self) -> PostgresServer:
        bindir = find_postgres_bin()
        if bindir is None:
            raise ServiceUnavailable(
                "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on "
                "PATH); run scripts/ensure-services"
            )
        if importlib.util.find_spec("psycopg") is None:
            raise ServiceUnavailable("psycopg is not installed: pip install 'mainspring[postgres]'")
        self.workdir = Path(tempfile.mkdtemp(prefix="mainspring-pg-", dir=_postgres_tmp()))
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as the ``postgres`` OS user
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceUnavailable(
                    "running as root and there is no 'postgres' OS user to run PostgreSQL as"
                ) from None
            os.chown(self.workdir, user.pw_uid, user.pw_gid)
            self._run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
        initdb_log = self.workdir / "initdb.log"
        with initdb_log.open("wb") as log:
            result = subprocess.run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.workdir / "data"),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--auth-local=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
                timeout=START_TIMEOUT_S,
                check=False,
                **self._run_as,
            )
        if result.returncode != 0:
            raise _StartFailed(f"initdb exited with status {result.returncode}", initdb_log)
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._start_postgres(bindir, env, attempt)
                return self
            except _StartFailed as exc:
                self._stop_process()
                if not exc.port_taken or attempt == PORT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _start_postgres(self, bindir: Path, env: dict[str, str], attempt: int) -> None:
        assert self.workdir is not None
        self.port = free_port()
        log_path = self.workdir / f"postgres-{attempt}.log"
        settings = {
            "listen_addresses": HOST,
            "port": str(self.port),
            "unix_socket_directories": str(self.workdir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        args = [str(bindir / "postgres"), "-D", str(self.workdir / "data")]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        with log_path.open("wb") as log:
            self.proc = _spawn(args, log, env, cwd=self.workdir, **self._run_as)
        _wait_until(self._accepts, self.proc, "postgres", log_path)

    def _accepts(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url(), connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) as the superuser."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=30) as conn:
            conn.execute(sql.encode())

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any connection a test left open."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _stop_process(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: it ends client sessions instead of waiting
        _stop_group(self.proc, signal.SIGINT)
        self.proc = None

    def stop(self) -> None:
        self._stop_process()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


# --------------------------------------------------------------------------------------------
# S3 (moto)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    """Where a test may keep blobs: an ``s3://`` URL and the options that reach the moto server.

    ``FsspecBlobStore(location.url, location.storage_options)`` opens it.
    """

    url: str
    storage_options: dict[str, Any] = field(hash=False)
    endpoint_url: str
    bucket: str
    prefix: str


def _s3_options(endpoint_url: str) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint_url,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
    }


#: Environment that keeps botocore away from real AWS (no metadata service, no profiles).
SAFE_AWS_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def aws_env_overrides(workdir: Path) -> dict[str, str | None]:
    """Variables to set (``None``: to remove) so that S3 clients read no real AWS configuration."""
    overrides: dict[str, str | None] = {var: None for var in os.environ if var.startswith("AWS_")}
    overrides.update(SAFE_AWS_ENV)
    overrides["AWS_CONFIG_FILE"] = str(workdir / "aws-config")
    overrides["AWS_SHARED_CREDENTIALS_FILE"] = str(workdir / "aws-credentials")
    return overrides


def moto_command() -> list[str] | None:
    """How to run moto's server with this interpreter, or ``None`` when moto[server] is absent."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        return None
    script = Path(sys.executable).parent / "moto_server"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "moto.server"]


class MotoServer:
    """moto's S3 server on 127.0.0.1 with one bucket; :meth:`location` hands out fresh prefixes."""

    bucket = "mainspring-test"

    def __init__(self) -> None:
        self.port = 0
        self.workdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def location(self) -> S3Location:
        prefix = f"prefix-{uuid.uuid4().hex}"
        return S3Location(
            url=f"s3://{self.bucket}/{prefix}",
            storage_options=_s3_options(self.endpoint_url),
            endpoint_url=self.endpoint_url,
            bucket=self.bucket,
            prefix=prefix,
        )

    def start(self) -> MotoServer:
        command = moto_command()
        if command is None:
            raise ServiceUnavailable("moto[server] is not installed: pip install 'moto[server]'")
        if importlib.util.find_spec("s3fs") is None:
            raise ServiceUnavailable("s3fs is not installed: pip install 'mainspring[s3]'")
        self.workdir = Path(tempfile.mkdtemp(prefix="mainspring-s3-"))
        env = dict(os.environ)
        for var, value in aws_env_overrides(self.workdir).items():
            if value is None:
                env.pop(var, None)
            else:
                env[var] = value
        for attempt in range(PORT_ATTEMPTS):
            self.port = free_port()
            log_path = self.workdir / f"moto-{attempt}.log"
            with log_path.open("wb") as log:
                self.proc = _spawn([*command, "-H", HOST, "-p", str(self.port)], log, env)
            try:
                _wait_until(self._accepts, self.proc, "moto_server", log_path)
                break
            except _StartFailed as exc:
                _stop_group(self.proc, signal.SIGTERM)
                self.proc = None
                if not exc.port_taken or attempt == PORT_ATTEMPTS - 1:
                    raise
        self._create_bucket()
        return self

    def _accepts(self) -> bool:
        # no proxies: a proxy from the environment must not see (or swallow) local requests
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"{self.endpoint_url}/moto-api/", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except OSError:
            return False

    def _create_bucket(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/{self.bucket}", method="PUT")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=30):
                pass
        except OSError as exc:
            raise ServiceUnavailable(f"moto_server refused to create a bucket: {exc}") from exc

    def stop(self) -> None:
        _stop_group(self.proc, signal.SIGTERM)
        self.proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


class RedisServer:
    """Debian's ``redis-server`` on 127.0.0.1, in memory only (no snapshots, no AOF); with
    ``durable=True``, with an append-only file synced on every write, so that it can be killed
    and restarted (:meth:`kill`, :meth:`restart`) without losing acknowledged writes."""

    def __init__(self, *, durable: bool = False) -> None:
        self.port = 0
        self.workdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.durable = durable
        self._args: list[str] = []

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    @property
    def socket_path(self) -> Path:
        """The server's unix-domain socket (beside its TCP port)."""
        assert self.workdir is not None, "socket_path needs a started server"
        return self.workdir / "redis.sock"

    def unix_url(self, db: int = 0) -> str:
        """``redis+unix:///…/redis.sock?db=N``: the same server over its unix-domain socket."""
        return f"redis+unix://{self.socket_path}?db={db}"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceUnavailable("redis-server is not installed; run scripts/ensure-services")
        if importlib.util.find_spec("redis") is None:
            raise ServiceUnavailable("redis-py is not installed: pip install 'mainspring[redis]'")
        self.workdir = Path(tempfile.mkdtemp(prefix="mainspring-redis-"))
        for attempt in range(PORT_ATTEMPTS):
            self.port = free_port()
            log_path = self.workdir / f"redis-{attempt}.log"
            args = [
                binary,
                "--bind",
                HOST,
                "--port",
                str(self.port),
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                *(["yes", "--appendfsync", "always"] if self.durable else ["no"]),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                "--unixsocket",
                str(self.workdir / "redis.sock"),
                "--unixsocketperm",
                "700",
            ]
            self._args = args
            with log_path.open("wb") as log:
                self.proc = _spawn(args, log, dict(os.environ), cwd=self.workdir)
            try:
                _wait_until(self._accepts, self.proc, "redis-server", log_path)
                return self
            except _StartFailed as exc:
                _stop_group(self.proc, signal.SIGTERM)
                self.proc = None
                if not exc.port_taken or attempt == PORT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """End the server at once (SIGKILL), keeping its port and its files."""
        _stop_group(self.proc, signal.SIGKILL)
        self.proc = None

    def restart(self) -> None:
        """Start the server again after :meth:`kill`, on the same port with the same files."""
        assert self.workdir is not None, "restart() needs a started server"
        log_path = self.workdir / f"redis-restart-{uuid.uuid4().hex[:6]}.log"
        with log_path.open("wb") as log:
            self.proc = _spawn(self._args, log, dict(os.environ), cwd=self.workdir)
        _wait_until(self._accepts, self.proc, "redis-server", log_path)

    def flush(self) -> None:
        """Empty every database (between tests)."""
        with socket.create_connection((HOST, self.port), timeout=30) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            if not sock.recv(16).startswith(b"+OK"):
                raise ServiceUnavailable("redis-server refused FLUSHALL")

    def stop(self) -> None:
        _stop_group(self.proc, signal.SIGTERM)
        self.proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


def _spawn(
    args: Sequence[str], log: IO[bytes], env: dict[str, str], **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start a server in its own session (so its whole process group can be ended)."""
    try:
        return subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            **kwargs,
        )
    except OSError as exc:
        raise ServiceUnavailable(f"cannot run {args[0]}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Apache Kafka (KRaft, one node)
# --------------------------------------------------------------------------------------------

#: The Apache Kafka broker the tests run (``org.apache.kafka:kafka_2.13`` on Maven Central).
KAFKA_VERSION = "4.1.1"
#: Seconds Maven may take to fetch the broker's jars (once; then they are cached).
KAFKA_FETCH_TIMEOUT_S = 900.0

_KAFKA_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>mainspring.test</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def kafka_cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes in URL-safe base64, never starting with ``-``.

    Kafka's own ``Uuid.randomUuid`` draws again when the text starts with a dash, because the
    command line would read it as an option (one id in 64 did, and the format step failed).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def kafka_cache(version: str = KAFKA_VERSION) -> Path:
    """Where the broker's jars are kept: ``$XDG_CACHE_HOME/mainspring/kafka-<version>``."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "mainspring" / f"kafka-{version}"


def kafka_jars(version: str = KAFKA_VERSION) -> Path:
    """The directory of the broker's jars, fetched with Maven on first use and reused after."""
    cache = kafka_cache(version)
    libs = cache / "libs"
    if (cache / "complete").exists() and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    if shutil.which("java") is None:
        raise ServiceUnavailable("Java is not installed: Apache Kafka needs java (17 or newer)")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceUnavailable(
            "Maven (mvn) is not installed: it fetches Apache Kafka's jars; apt-get install maven"
        )
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "pom.xml").write_text(_KAFKA_POM.format(version=version), encoding="utf-8")
    staging = cache / f"libs.{os.getpid()}"
    log_path = cache / "mvn.log"
    with log_path.open("wb") as log:
        try:
            result = subprocess.run(
                [
                    mvn,
                    "-B",
                    "-q",
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={staging}",
                    "-DincludeScope=runtime",
                ],
                cwd=cache,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=KAFKA_FETCH_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise _StartFailed(
                f"Maven did not fetch Kafka {version} within {KAFKA_FETCH_TIMEOUT_S:.0f} s",
                log_path,
            ) from None
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        raise _StartFailed(f"Maven could not fetch Kafka {version}", log_path)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    (cache / "complete").write_text(version + "\n", encoding="utf-8")
    return libs


class KafkaServer:
    """A throw-away one-node Apache Kafka in KRaft mode (broker and controller in one JVM).

    :meth:`kill` ends the broker like ``kill -9`` and :meth:`restart` brings it back on the same
    port with the same data, for tests of a broker that goes away.
    """

    heap = "-Xmx512m"

    def __init__(self) -> None:
        self.port = 0
        self.controller_port = 0
        self.workdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._libs: Path | None = None
        self._starts = 0

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def _properties(self) -> str:
        assert self.workdir is not None
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
        }
        return "".join(f"{k}={v}\n" for k, v in settings.items())

    def _java(self, *args: str) -> list[str]:
        assert self._libs is not None
        return ["java", self.heap, "-Djava.awt.headless=true", "-cp", f"{self._libs}/*", *args]

    def start(self) -> KafkaServer:
        self._libs = kafka_jars()
        self.workdir = Path(tempfile.mkdtemp(prefix="mainspring-kafka-"))
        for attempt in range(PORT_ATTEMPTS):
            self.port, self.controller_port = free_port(), free_port()
            shutil.rmtree(self.workdir / "data", ignore_errors=True)
            config = self.workdir / "server.properties"
            config.write_text(self._properties(), encoding="utf-8")
            format_log = self.workdir / "format.log"
            with format_log.open("wb") as log:
                result = subprocess.run(
                    self._java(
                        "kafka.tools.StorageTool",
                        "format",
                        f"--cluster-id={kafka_cluster_id()}",
                        "-c",
                        str(config),
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=START_TIMEOUT_S,
                    check=False,
                )
            if result.returncode != 0:
                raise _StartFailed("kafka-storage format failed", format_log)
            try:
                self._run()
                return self
            except _StartFailed:
                _stop_group(self.proc, signal.SIGKILL)
                self.proc = None
                if attempt == PORT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _run(self) -> None:
        assert self.workdir is not None
        self._starts += 1
        log_path = self.workdir / f"kafka-{self._starts}.log"
        with log_path.open("wb") as log:
            self.proc = _spawn(
                self._java("kafka.Kafka", str(self.workdir / "server.properties")),
                log,
                dict(os.environ),
                cwd=self.workdir,
            )
        _wait_until(self._accepts, self.proc, "kafka", log_path, timeout=2 * START_TIMEOUT_S)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=2):
                pass
        except OSError:
            return False
        if importlib.util.find_spec("confluent_kafka") is None:
            return True
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            metadata = admin.list_topics(timeout=5)
        except Exception:
            return False
        return bool(metadata.brokers)

    def kill(self) -> None:
        """End the broker at once (SIGKILL), keeping its data and ports."""
        _stop_group(self.proc, signal.SIGKILL)
        self.proc = None

    def restart(self) -> None:
        """Start the broker again after :meth:`kill`, on the same ports with the same data."""
        self._run()

    def stop(self) -> None:
        # the data is thrown away: no need for Kafka's controlled shutdown
        _stop_group(self.proc, signal.SIGKILL)
        self.proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


if __name__ == "__main__":
    # scripts/ensure-services: fetch the Kafka broker's jars ahead of the tests
    if sys.argv[1:] == ["fetch-kafka"]:
        try:
            print(kafka_jars())
        except ServiceUnavailable as exc:
            print(f"cannot fetch Apache Kafka: {exc}", file=sys.stderr)
            sys.exit(1)
    else:
        sys.exit("usage: servers.py fetch-kafka")
