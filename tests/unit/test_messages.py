"""Messages: immutability, envelope defaults, type names and their registry."""

from __future__ import annotations

import dataclasses
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from orchestrix import (
    Command,
    ConfigurationError,
    DuplicateTypeNameError,
    Event,
    Message,
    Query,
    new_message_id,
    set_default_source,
)
from orchestrix.messages import default_source, message_class, message_classes


@dataclass(frozen=True, kw_only=True, slots=True)
class Deposited(Event, type="test.messages.deposited", version=2):
    account_id: str
    amount: int


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenAccount(Command):
    owner: str


@dataclass(frozen=True, kw_only=True, slots=True)
class GetBalance(Query, type="test.messages.get-balance"):
    account_id: str


def test_envelope_defaults_are_generated() -> None:
    """A new message gets a UUIDv7 id, the default source and an aware UTC time."""
    before = datetime.now(UTC)
    event = Deposited(account_id="a", amount=5)
    assert uuid.UUID(event.id).version == 7
    assert event.source == default_source()
    assert before <= event.time <= datetime.now(UTC)
    assert event.time.tzinfo is not None
    assert event.subject is None
    assert event.correlation_id is None
    assert event.causation_id is None


def test_messages_are_frozen_and_keyword_only() -> None:
    """Fields cannot be reassigned and must be passed by keyword."""
    event = Deposited(account_id="a", amount=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.amount = 6  # type: ignore[misc]
    with pytest.raises(TypeError):
        Deposited("a", 5)  # type: ignore[call-arg, arg-type]


def test_type_name_from_keyword_or_qualified_name() -> None:
    """The class keyword names the type; without it the qualified name is used."""
    assert Deposited.type_name() == "test.messages.deposited"
    assert OpenAccount.type_name() == "OpenAccount"
    assert GetBalance.type_name() == "test.messages.get-balance"
    assert message_class("test.messages.deposited") is Deposited
    assert message_class("OpenAccount") is OpenAccount
    assert message_classes()["test.messages.get-balance"] is GetBalance


def test_schema_version_defaults_to_one() -> None:
    """Events declare a schema version with version=; the default is 1."""
    assert Deposited.schema_version() == 2
    assert OpenAccount.schema_version() == 1


def test_duplicate_type_name_is_an_error_at_class_definition() -> None:
    """A second class claiming a taken type name fails when it is defined."""
    with pytest.raises(DuplicateTypeNameError, match="test.messages.deposited"):

        @dataclass(frozen=True, kw_only=True, slots=True)
        class Other(Event, type="test.messages.deposited"):
            value: int

    assert message_class("test.messages.deposited") is Deposited


def test_redefining_the_same_class_replaces_it() -> None:
    """Re-running a class definition (same module and qualified name) is allowed."""

    def define() -> type[Event]:
        @dataclass(frozen=True, kw_only=True, slots=True)
        class Redefined(Event, type="test.messages.redefined"):
            value: int

        return Redefined

    first, second = define(), define()
    assert first is not second
    assert message_class("test.messages.redefined") is second


def test_version_is_only_for_events() -> None:
    """Commands and queries are not stored, so they take no schema version."""
    with pytest.raises(ConfigurationError, match="only Event classes take version="):

        class Versioned(Command, type="test.messages.versioned", version=2):
            pass


@pytest.mark.parametrize("version", [0, -1, True, "2", 2**31])
def test_version_must_be_a_positive_int(version: object) -> None:
    """A version outside 1 to 2**31 - 1 (what every backend stores) is refused."""
    with pytest.raises(ConfigurationError, match="version= must be an int from 1 to"):

        class Bad(Event, type=f"test.messages.bad-{version!r}", version=version):  # type: ignore[arg-type]
            pass


def test_empty_type_name_is_rejected() -> None:
    """A blank type name cannot identify a class."""
    with pytest.raises(ConfigurationError, match="non-empty"):

        class Blank(Event, type=" "):
            pass


def test_caused_links_correlation_and_causation() -> None:
    """caused() copies the correlation id (or the id) and sets the causation id."""
    command = OpenAccount(owner="ada")
    event = command.caused(Deposited(account_id="a", amount=1))
    assert event.causation_id == command.id
    assert event.correlation_id == command.id
    follow = event.caused(Deposited(account_id="a", amount=2))
    assert follow.correlation_id == command.id
    assert follow.causation_id == event.id


def test_message_ids_are_unique_and_time_ordered() -> None:
    """Ids are distinct, valid UUIDv7 strings whose timestamps never go backwards."""
    ids = [new_message_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    stamps = [uuid.UUID(i).int >> 80 for i in ids]
    assert stamps == sorted(stamps)
    assert all(uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)


def test_default_source_can_be_configured() -> None:
    """set_default_source changes the source of messages created afterwards."""
    previous = default_source()
    try:
        set_default_source("https://bank.example/accounts")
        assert (
            Deposited(account_id="a", amount=1).source
            == "https://bank.example/accounts"
        )
    finally:
        set_default_source(previous)
    with pytest.raises(ConfigurationError):
        set_default_source("")


def test_base_kinds_are_registered() -> None:
    """Message, Command, Event and Query have reserved type names."""
    assert Message.type_name() == "orchestrix.Message"
    assert Event.type_name() == "orchestrix.Event"
    assert Command.type_name() == "orchestrix.Command"
    assert Query.type_name() == "orchestrix.Query"


def test_message_ids_from_many_threads_are_unique() -> None:
    """Threads taking ids at once, switching as often as possible, never share one."""
    ids: list[str] = []

    def take() -> None:
        ids.extend(new_message_id() for _ in range(5_000))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=take) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert len(ids) == 40_000
    assert len(set(ids)) == len(ids)
