"""The decision log, outcomes and human review (a domain package: imports only the foundation).

- :class:`DecisionLog` (``log.py``): append-only, hash-chained, group-committed log of decisions,
  their outcomes and reviews on the metadata store; ``verify``, queries, the review queue, labels
  for retraining and override rates.
- :class:`PersonalData` (``personal.py``): fields dropped or replaced by an HMAC before logging.
- ``writer.py`` (group commit, :class:`Durability`), ``outbox.py`` (mirror to the event log),
  ``metrics.py`` (Prometheus), ``entries.py`` (what the log hands back), ``outcomes.py``
  (:class:`OutcomeProcessor`: outcomes from the event backbone, for ``mainspring worker``).
"""

from mainspring.audit.entries import Kind, Label, LoggedDecision, OverrideRate
from mainspring.audit.log import DecisionLog
from mainspring.audit.metrics import AuditMetrics
from mainspring.audit.outbox import TOPICS, Mirror
from mainspring.audit.outcomes import OutcomeProcessor
from mainspring.audit.personal import PersonalData, Treatment
from mainspring.audit.writer import Durability

__all__ = [
    "TOPICS",
    "AuditMetrics",
    "DecisionLog",
    "Durability",
    "Kind",
    "Label",
    "LoggedDecision",
    "Mirror",
    "OutcomeProcessor",
    "OverrideRate",
    "PersonalData",
    "Treatment",
]
