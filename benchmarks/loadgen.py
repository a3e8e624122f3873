"""The load generator of the HTTP benchmarks (serving, decisions): wrk (Debian package ``wrk``),
closed-loop and keep-alive, run against a server on 127.0.0.1, and free ports for those servers.

A benchmark script imports it after putting this directory on ``sys.path``::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import loadgen

Two kinds of latency come out of :func:`wrk`:

- ``wrk_p50`` / ``wrk_p99``: wrk's printed percentiles, which are coordinated-omission corrected
  (wrk adds synthetic samples for every response slower than the mean interval), so stalls weigh
  more;
- ``p50`` / ``p99`` / ``p999`` / ``max``: each request's own latency, when the wrk script prints
  them on a ``MEASURED`` line (``serving/latency.lua`` does).
"""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def free_port(span: int = 1) -> int:
    """A free port on 127.0.0.1 (and the ``span - 1`` after it, for servers that open several)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + span < 65535 and all(_free(port + i) for i in range(1, span)):
            return port


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wrk(
    url: str,
    connections: int,
    seconds: int,
    script: Path,
    *,
    threads: int | None = None,
    timeout_s: float | None = None,
) -> dict[str, float]:
    """Run wrk with ``script`` (a Lua file that builds the requests) and parse what it printed.

    ``threads`` defaults to one per connection (what ``latency.lua``'s measurement needs);
    ``timeout_s`` to wrk's own (2 s), past which a response counts as a socket error. The
    result: ``rps``, ``requests``, ``non_2xx``, ``socket_errors``, ``errors`` (the two summed),
    the latencies described in the module's docstring (ms), when printed.
    """
    command = ["wrk", "-t", str(threads or connections), "-c", str(connections),
               "-d", f"{seconds}s", "--latency", "-s", str(script)]  # fmt: skip
    if timeout_s is not None:
        command += ["--timeout", f"{timeout_s:g}s"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return parse(out)


def parse(out: str) -> dict[str, float]:
    """The figures in wrk's output.

    >>> parse('''
    ...   Latency Distribution
    ...      50%  512.00us
    ...      99%    1.09ms
    ...   3000 requests in 1.00s, 0.5MB read
    ...   Non-2xx or 3xx responses: 2
    ... Requests/sec:   2999.50
    ... MEASURED count=3000 p50_ms=0.500 p99_ms=1.000 p999_ms=2.000 max_ms=3.000
    ... ''')  # doctest: +NORMALIZE_WHITESPACE
    {'rps': 2999.5, 'requests': 3000.0, 'non_2xx': 2.0, 'socket_errors': 0.0, 'errors': 2.0,
     'wrk_p50': 0.512, 'wrk_p99': 1.09, 'p50': 0.5, 'p99': 1.0, 'p999': 2.0, 'max': 3.0}
    """
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"wrk printed no Requests/sec:\n{out}")
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    result = {
        "rps": float(rps.group(1)),
        "requests": float(total.group(1)) if total else 0.0,
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": sum(float(g) for g in sockets.groups()) if sockets else 0.0,
    }
    result["errors"] = result["non_2xx"] + result["socket_errors"]
    for pct in ("50", "99"):
        match = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\b", out)
        if match:
            result[f"wrk_p{pct}"] = float(match.group(1)) * _UNIT_MS[match.group(2)]
    measured = re.search(
        r"MEASURED count=\d+ p50_ms=([\d.]+) p99_ms=([\d.]+) p999_ms=([\d.]+) max_ms=([\d.]+)", out
    )
    if measured:
        for key, value in zip(("p50", "p99", "p999", "max"), measured.groups(), strict=True):
            result[key] = float(value)
    return result
