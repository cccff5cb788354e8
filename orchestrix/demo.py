"""A small bank, run end to end: ``python -m orchestrix.demo``.

Commands travel over a message bus to handlers that load accounts through a
repository, run the command and save the recorded events; the repository
publishes those events, and a projection keeps a balance table up to date.

The store is the default one (``$ORCHESTRIX_STORE_URL``, else
`orchestrix.config.DEFAULT_STORE_URL`), so with a durable store every run
continues from the state the previous run left.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrix import (
    AggregateNotFound,
    Command,
    Event,
    EventStore,
    HandlerError,
    MessageBus,
    open_bus,
    open_snapshot_store,
    open_store,
)
from orchestrix.aggregate import AggregateRoot, applies
from orchestrix.config import DEFAULT_STORE_URL, STORE_URL_ENV
from orchestrix.repository import Repository

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "Account",
    "AccountOpened",
    "BalanceProjection",
    "Deposit",
    "Deposited",
    "InsufficientFundsError",
    "OpenAccount",
    "Transfer",
    "Withdraw",
    "Withdrawn",
    "main",
    "run",
]


# --- messages -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class AccountOpened(Event, type="demo.bank.account-opened"):
    """An account was opened for an owner."""

    account_id: str
    owner: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Deposited(Event, type="demo.bank.deposited"):
    """Money (in cents) was paid into an account."""

    account_id: str
    amount: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Withdrawn(Event, type="demo.bank.withdrawn"):
    """Money (in cents) was taken out of an account."""

    account_id: str
    amount: int


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenAccount(Command, type="demo.bank.open-account"):
    """Open an account."""

    account_id: str
    owner: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Deposit(Command, type="demo.bank.deposit"):
    """Pay money into an account."""

    account_id: str
    amount: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Withdraw(Command, type="demo.bank.withdraw"):
    """Take money out of an account, never below zero."""

    account_id: str
    amount: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Transfer(Command, type="demo.bank.transfer"):
    """Move money from one account to another."""

    source_account: str
    target_account: str
    amount: int


# --- the aggregate ------------------------------------------------------------


class InsufficientFundsError(Exception):
    """A withdrawal would take an account below zero."""


class Account(AggregateRoot, type="demo.bank.account"):
    """A bank account whose balance never goes below zero."""

    owner: str
    balance: int

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.owner = ""
        self.balance = 0

    @classmethod
    def open(cls, account_id: str, owner: str) -> Account:
        """Open a new account."""
        account = cls(account_id)
        account._record(AccountOpened(account_id=account_id, owner=owner))
        return account

    def deposit(self, amount: int) -> None:
        """Pay *amount* cents in."""
        if amount <= 0:
            msg = f"deposit a positive amount, not {amount}"
            raise ValueError(msg)
        self._record(Deposited(account_id=self.id, amount=amount))

    def withdraw(self, amount: int) -> None:
        """Take *amount* cents out, if the balance covers it."""
        if amount <= 0:
            msg = f"withdraw a positive amount, not {amount}"
            raise ValueError(msg)
        if amount > self.balance:
            msg = (
                f"{self.id} holds {_money(self.balance)}, "
                f"cannot withdraw {_money(amount)}"
            )
            raise InsufficientFundsError(msg)
        self._record(Withdrawn(account_id=self.id, amount=amount))

    @applies(AccountOpened)
    def _opened(self, event: AccountOpened) -> None:
        self.owner = event.owner

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount

    @applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self.balance -= event.amount


# --- the read side ------------------------------------------------------------


class BalanceProjection:
    """A read model: every account's balance, kept up to date from events."""

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.owners: dict[str, str] = {}
        self.events_seen = 0

    async def catch_up(self, store: EventStore) -> None:
        """Fold every event already in the store (from the global log)."""
        async for recorded in store.read_all():
            await self.handle(recorded.event)

    async def handle(self, event: Event) -> None:
        """Apply one event to the read model."""
        self.events_seen += 1
        match event:
            case AccountOpened(account_id=account_id, owner=owner):
                self.owners[account_id] = owner
                self.balances.setdefault(account_id, 0)
            case Deposited(account_id=account_id, amount=amount):
                self.balances[account_id] = self.balances.get(account_id, 0) + amount
            case Withdrawn(account_id=account_id, amount=amount):
                self.balances[account_id] = self.balances.get(account_id, 0) - amount
            case _:
                self.events_seen -= 1


# --- wiring -------------------------------------------------------------------


def _money(cents: int) -> str:
    return f"{cents / 100:,.2f} EUR"


def _wire(bus: MessageBus, accounts: Repository[Account], out: list[str]) -> None:
    async def open_account(command: OpenAccount) -> None:
        await accounts.save(Account.open(command.account_id, command.owner))
        out.append(f"opened {command.account_id} for {command.owner}")

    async def deposit(command: Deposit) -> None:
        account = await accounts.get(command.account_id)
        account.deposit(command.amount)
        await accounts.save(account)
        out.append(f"deposited {_money(command.amount)} into {command.account_id}")

    async def withdraw(command: Withdraw) -> None:
        account = await accounts.get(command.account_id)
        account.withdraw(command.amount)
        await accounts.save(account)
        out.append(f"withdrew {_money(command.amount)} from {command.account_id}")

    async def transfer(command: Transfer) -> None:
        source = await accounts.get(command.source_account)
        target = await accounts.get(command.target_account)
        source.withdraw(command.amount)  # checks the invariant before any write
        target.deposit(command.amount)
        await accounts.save(source)
        await accounts.save(target)
        out.append(
            f"transferred {_money(command.amount)} from {command.source_account} "
            f"to {command.target_account}"
        )

    bus.subscribe(OpenAccount, open_account)
    bus.subscribe(Deposit, deposit)
    bus.subscribe(Withdraw, withdraw)
    bus.subscribe(Transfer, transfer)


async def _send(bus: MessageBus, command: Command, out: list[str]) -> None:
    try:
        await bus.publish(command)
    except HandlerError as error:
        name = type(command).__name__
        out.extend(f"rejected {name}: {cause}" for cause in error.exceptions)


async def run(store_url: str | None = None, *, print_line: bool = True) -> list[str]:
    """Run the demo once against *store_url* (default: the configured store).

    Returns:
        The lines it printed.
    """
    out: list[str] = []
    url = store_url or os.environ.get(STORE_URL_ENV) or DEFAULT_STORE_URL
    async with (
        open_store(url) as store,
        open_snapshot_store(url) as snapshots,
        open_bus("memory://") as bus,
    ):
        accounts = Repository(
            Account, store, snapshots=snapshots, snapshot_every=10, bus=bus
        )
        projection = BalanceProjection()
        await projection.catch_up(store)
        previous = projection.events_seen
        _wire(bus, accounts, out)
        bus.subscribe(Event, projection.handle)
        await bus.start()

        out.append(f"store: {url}")
        if previous:
            out.append(f"continuing: {previous} events already stored")
        else:
            out.append("empty store: opening the accounts")
        commands: Sequence[Command] = [
            *_openings(previous),
            Deposit(account_id="alice", amount=100_00),
            Withdraw(account_id="alice", amount=30_00),
            Transfer(source_account="alice", target_account="bob", amount=25_00),
            Withdraw(account_id="bob", amount=1_000_000_00),
        ]
        for command in commands:
            await _send(bus, command, out)
        try:
            await accounts.get("carol")
        except AggregateNotFound as error:
            out.append(f"lookup failed as expected: {error}")
        for account_id in sorted(projection.balances):
            account = await accounts.get(account_id)
            out.append(
                f"{account_id:>6} ({projection.owners[account_id]}): "
                f"{_money(projection.balances[account_id])}, version {account.version}"
            )
            assert account.balance == projection.balances[account_id]  # noqa: S101 -- the demo checks itself
        out.append(f"events stored: {projection.events_seen}")
    if print_line:
        for line in out:
            print(line)
    return out


def _openings(previous: int) -> list[Command]:
    if previous:
        return []
    return [
        OpenAccount(account_id="alice", owner="Alice"),
        OpenAccount(account_id="bob", owner="Bob"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m orchestrix.demo [STORE_URL]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    asyncio.run(run(args[0] if args else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
