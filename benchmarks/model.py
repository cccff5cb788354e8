"""The domain every contender stores: a ledger of deposits.

orchestrix contenders store `Deposited` events and fold them with `Ledger`;
raw contenders store the same data as plain JSON; the ``eventsourcing``
contenders define their own classes (see `benchmarks.contenders.es`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrix.aggregate import AggregateRoot, applies
from orchestrix.messages import Event

__all__ = ["EVENT_TYPE", "Deposited", "Ledger", "LedgerState", "raw_payload"]

#: Type name the raw contenders store next to their JSON payload.
EVENT_TYPE = "bench.ledger.deposited"


@dataclass(frozen=True, kw_only=True, slots=True)
class Deposited(Event, type=EVENT_TYPE):
    """A deposit into a ledger; the one event type of every workload."""

    ledger_id: str
    amount: int


class Ledger(AggregateRoot, type="bench.ledger"):
    """The aggregate W3 rehydrates: a running balance and an event count."""

    balance: int
    count: int

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.balance = 0
        self.count = 0

    def deposit(self, amount: int) -> None:
        """Record a deposit."""
        self._record(Deposited(ledger_id=self.id, amount=amount))

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount
        self.count += 1


@dataclass(frozen=True, slots=True)
class LedgerState:
    """What a rehydration produced; checked against what was written."""

    balance: int
    count: int


def raw_payload(ledger_id: str, amount: int) -> dict[str, Any]:
    """Return the data a raw contender stores for one deposit."""
    return {"ledger_id": ledger_id, "amount": amount}
