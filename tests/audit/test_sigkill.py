"""No acknowledged decision is lost when the appending process is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa

from mainspring.audit import DecisionLog
from mainspring.storage.sql import SqlMetadataStore

CHILD = textwrap.dedent(
    """
    import sys, threading
    from datetime import UTC, datetime
    from mainspring.audit import DecisionLog
    from mainspring.records import Decision
    from mainspring.storage import open_metadata_store

    url, durability = sys.argv[1], sys.argv[2]
    log = DecisionLog(open_metadata_store(url), durability=durability)
    out = threading.Lock()

    def work(t):
        i = 0
        while True:
            i += 1
            d = Decision(id=f"t{t}-{i}", deployment="credit", at=datetime.now(UTC),
                         decision="approve", policy="p@1", entity={"n": i},
                         review_required=i % 7 == 0)
            log.append(d)
            with out:  # acknowledged: committed before this line is written
                sys.stdout.write(d.id + "\\n")
                sys.stdout.flush()

    for t in range(6):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    threading.Event().wait()
    """
)

ACKS_BEFORE_KILL = 300


@pytest.mark.parametrize("durability", ["fsync", "process"])
def test_every_acknowledged_decision_survives_sigkill(
    store: SqlMetadataStore, store_url: str, durability: str
) -> None:
    acked: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, store_url, durability],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            for line in child.stdout:
                acked.append(line.strip())
                if len(acked) >= ACKS_BEFORE_KILL:
                    os.kill(child.pid, signal.SIGKILL)  # mid-stream: appends are in flight
                    break
            rest = child.stdout.read()
            acked += [x for x in rest.split("\n")[:-1] if x]  # whole lines from before the kill
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(30)
            stderr = child.stderr.read() if child.stderr else ""
    assert len(acked) >= ACKS_BEFORE_KILL, stderr
    assert child.returncode == -signal.SIGKILL

    with DecisionLog(store) as log:
        assert log.verify().ok
        with store.read() as conn:
            rows = conn.execute(
                sa.select(sa.text("id"), sa.func.count())
                .select_from(sa.text("decision_log"))
                .group_by(sa.text("id"))
            ).all()
        counts = dict(rows)  # type: ignore[arg-type]
        assert all(counts.get(i) == 1 for i in acked), "an acknowledged decision is missing"
        assert len(counts) >= len(acked)
        log.append(log.get(acked[0]).decision)  # the log takes appends after the crash
        assert log.verify().ok
