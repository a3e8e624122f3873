"""Stream events into online features, score requests asynchronously, join outcomes to scores.

Run: python examples/streaming_quickstart.py [PROJECT_DIR]

1. Card payments stream into a feature view (a transformation computes the features); the same
   rows land in Parquet, so a training set sees exactly what the online store serves.
2. A LightGBM model trained on that training set scores request events from a topic, one predict
   call per batch; a malformed request is dead-lettered with the reason.
3. Chargeback outcomes arrive later and are joined to the scores they answer.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd

import mainspring as ms
from mainspring.events import TopicJoin, Worker
from mainspring.features.streaming import StreamIngest
from mainspring.serving import DataPlane
from mainspring.serving.asynchronous import AsyncInference

#: What tests/test_examples.py looks for in the output.
EXPECT = "streamed features agree online and offline"

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CARDS = 300
FEATURES = ["amount", "log_amount", "foreign"]


def card_features(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    amount = columns["amount"]
    return {
        "amount": amount,
        "log_amount": np.log1p(amount),
        "foreign": (columns["country"] != "DE").astype(float),
    }


card = ms.Entity("card", join_keys={"card_id": "int64"})
payments = ms.FeatureView(
    "card_payments",
    entity=card,
    fields=[ms.Field(name) for name in FEATURES],
    source=ms.StreamSource("payments", offline_path="streams/card_payments"),
    transformation=card_features,
)


def main(directory: str) -> None:
    rng = np.random.default_rng(0)
    with ms.Project.open(directory) as project:
        log, store = project.events, project.features
        log.create_topic("payments", partitions=3)
        store.apply([card, payments], actor="alice")

        # 1. payments → features, online and offline
        events = [
            ms.Event(
                "payments",
                {
                    "card_id": int(c),
                    "amount": float(rng.gamma(2.0, 40.0)),
                    "country": str(rng.choice(["DE", "DE", "FR", "US"])),
                },
                key=str(c),
                event_time=T0 + timedelta(seconds=i),
            )
            for i, c in enumerate(rng.integers(0, CARDS, 3000))
        ]
        log.produce(events)
        ledger = project.settings.project_dir / ".mainspring" / "streams.db"
        ingest = StreamIngest(store, ["card_payments"], ledger=ledger)
        stats = Worker(log, ingest, batch_size=1000).run(until_idle=True)
        print(f"ingested {stats.events} payments, {ingest.applied()} applied once each")
        ingest.close()

        end = T0 + timedelta(hours=2)
        cards = list(range(CARDS))
        online = store.get_online_features(["card_payments"], {"card_id": cards}, now=end)
        entity_rows = pd.DataFrame({"card_id": cards, "event_timestamp": [end] * CARDS})
        training = store.get_historical_features(entity_rows, ["card_payments"]).data
        same = all(training[name].tolist() == online.values[name] for name in FEATURES)
        print(
            "streamed features agree online and offline"
            if same
            else "streamed features DIFFER online and offline"
        )

        # 2. a model on those features scores request events asynchronously
        x = training[FEATURES].fillna(0.0)
        y = ((x["amount"] > 120) & (x["foreign"] > 0)).astype(int)
        y.iloc[:2] = [0, 1]  # both classes, whatever the draw
        model = lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(x, y)
        project.registry.register("fraud", model, actor="alice")
        latest = store.get_online_features(["card_payments"], {"card_id": cards[:5]}).rows()
        requests = [
            ms.Event(
                "requests", {"id": f"req-{c}", "inputs": {f: row[f] for f in FEATURES}}, key=str(c)
            )
            for c, row in zip(cards[:5], latest, strict=True)
        ]
        requests.append(ms.Event("requests", {"id": "req-bad", "inputs": {"amount": 10.0}}))
        log.produce(requests)
        plane = DataPlane(project.registry)
        plane.start()
        scorer = AsyncInference(plane, log, "fraud", requests="requests", predictions="scores")
        stats = Worker(log, scorer).run(until_idle=True)
        plane.close()
        scores = [e for p in range(log.partitions("scores")) for e in log.read("scores", p, 0)]
        for event in sorted(scores, key=lambda e: e.payload["request_id"]):
            outputs = event.payload["outputs"]
            print(f"{event.payload['request_id']}: P(fraud) = {list(outputs.values())[-1]:.3f}")
        (letter,) = log.read("requests.dlq", 0, 0)
        print(f"dead-lettered {letter.payload['id']}: {letter.headers['dlq-reason']}")

        # 3. chargebacks (outcomes) join the scores they answer
        outcomes = [
            ms.Event(
                "chargebacks",
                {"request_id": e.payload["request_id"], "fraud": n % 2},
                event_time=e.event_time + timedelta(days=20),
            )
            for n, e in enumerate(scores)
        ]
        log.produce(outcomes)
        state = project.settings.project_dir / ".mainspring" / "join.db"
        join = TopicJoin(
            log,
            state,
            left="scores",
            right="chargebacks",
            into="labelled",
            right_key="request_id",
            window=timedelta(days=60),
        )
        Worker(log, join).run(until_idle=True)
        print(f"joined {join.joined()} outcomes to their scores")
        join.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="mainspring-"))
