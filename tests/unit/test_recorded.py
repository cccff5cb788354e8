"""`Recorded`: the eager constructor and the lazy `Recorded.from_row`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrix import EncodedMessage, Event, SerializationError, UnknownMessageType
from orchestrix.codec import encode, upcaster
from orchestrix.records import Recorded

__all__: list[str] = []

WHEN = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True, slots=True)
class Noted(Event, type="test.recorded.noted"):
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Versioned(Event, type="test.recorded.versioned", version=2):
    size: int


@upcaster("test.recorded.versioned", from_version=1)
def _rename_length(data: dict[str, Any]) -> dict[str, Any]:
    data["size"] = data.pop("length")
    return data


def test_from_row_equals_the_constructor() -> None:
    """A record built from columns equals one built from an EncodedMessage."""
    record = encode(Noted(text="hi"))
    eager = Recorded("s-1", 3, 17, WHEN, record)
    lazy = Recorded.from_row("s-1", 3, 17, WHEN, *record)
    assert lazy == eager
    assert hash(lazy) == hash(eager)
    assert lazy.record == record
    assert isinstance(lazy.record, EncodedMessage)
    assert (lazy.id, lazy.type) == (record.id, record.type)
    assert (
        lazy.event
        == eager.event
        == Noted(
            id=record.id, source=eager.event.source, time=eager.event.time, text="hi"
        )
    )
    assert repr(lazy) == repr(eager)


def test_from_row_parses_the_time_once_on_first_access() -> None:
    """parse_time runs only when recorded_at is read, and only the first time."""
    calls: list[str] = []

    def parse(text: str) -> datetime:
        calls.append(text)
        return datetime.fromisoformat(text)

    record = encode(Noted(text="hi"))
    lazy = Recorded.from_row("s-1", 1, 1, "2026-11-22T04:00:00+00:00", *record, parse)
    event = lazy.event
    assert isinstance(event, Noted)
    assert event.text == "hi"
    assert calls == []
    assert lazy.recorded_at == WHEN
    assert lazy.recorded_at == WHEN
    assert calls == ["2026-11-22T04:00:00+00:00"]


def test_event_is_decoded_once_and_cached() -> None:
    """The event property decodes on first access and returns the same object."""
    lazy = Recorded.from_row("s-1", 1, 1, WHEN, *encode(Noted(text="x")))
    assert lazy.event is lazy.event


def test_undecodable_row_stays_readable_as_a_record() -> None:
    """A row of an unknown type raises on event but still gives its record."""
    lazy = Recorded.from_row("s-1", 1, 1, WHEN, "e-1", "test.recorded.nobody", 1, b"{}")
    assert lazy.record.to_dict() == {}
    with pytest.raises(UnknownMessageType, match="test.recorded.nobody"):
        _ = lazy.event


def test_payload_that_does_not_fit_names_the_record() -> None:
    """A payload missing a field raises SerializationError naming the event id."""
    lazy = Recorded.from_row("s-1", 1, 1, WHEN, "e-2", "test.recorded.noted", 1, b"{}")
    with pytest.raises(SerializationError, match="e-2"):
        _ = lazy.event


def test_old_schema_version_is_upcast() -> None:
    """A row written with an older schema version goes through its upcasters."""
    event = Versioned(size=3)
    stored = encode(event)
    payload = stored.payload.replace(b'"size":3', b'"length":3')
    lazy = Recorded.from_row("s-1", 1, 1, WHEN, stored.id, stored.type, 1, payload)
    assert lazy.event == event
