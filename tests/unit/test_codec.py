"""The codec: messages to stored records and back, upcasting, undecoded reads."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import msgspec
import pytest

from orchestrix import EncodedMessage, Event, SerializationError, UnknownMessageType
from orchestrix.codec import (
    decode,
    decode_fields,
    decode_payload,
    decode_state,
    encode,
    encode_state,
    register_upcaster,
    upcaster,
)
from orchestrix.errors import ConfigurationError


class Currency(Enum):
    EUR = "EUR"
    USD = "USD"


@dataclass(frozen=True, kw_only=True, slots=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderPlaced(Event, type="test.codec.order-placed"):
    order_id: uuid.UUID
    total: Decimal
    currency: Currency
    lines: tuple[Line, ...]
    placed_at: datetime
    tags: frozenset[str] = frozenset()
    note: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Renamed(Event, type="test.codec.renamed", version=3):
    full_name: str
    country: str = "?"


@dataclass(frozen=True, kw_only=True, slots=True)
class Unencodable(Event, type="test.codec.unencodable"):
    payload: Any = field(default_factory=object)


def _order() -> OrderPlaced:
    return OrderPlaced(
        order_id=uuid.uuid4(),
        total=Decimal("10.05"),
        currency=Currency.EUR,
        lines=(Line(sku="a", quantity=2), Line(sku="b", quantity=1)),
        placed_at=datetime(
            2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2))
        ),
        tags=frozenset({"x", "y"}),
        subject="order/1",
        correlation_id="corr",
        causation_id="cause",
    )


def test_round_trip_preserves_every_field() -> None:
    """Decoding an encoded message gives an equal message, rich types included."""
    event = _order()
    record = encode(event)
    assert record.id == event.id
    assert record.type == "test.codec.order-placed"
    assert record.schema_version == 1
    again = decode(record)
    assert again == event
    assert type(again.placed_at.tzinfo) is timezone
    assert again.placed_at.utcoffset() == timedelta(hours=2)


def test_payload_is_json_readable_without_the_class() -> None:
    """A reader without the class reads the payload and the data as plain dicts."""
    event = _order()
    record = encode(event)
    payload = record.to_dict()
    assert payload["id"] == event.id
    assert payload["total"] == "10.05"
    data = record.data()
    assert "id" not in data
    assert "time" not in data
    assert data["lines"] == [{"sku": "a", "quantity": 2}, {"sku": "b", "quantity": 1}]


def test_naive_time_is_rejected() -> None:
    """A naive envelope time cannot be stored unambiguously."""
    event = Renamed(full_name="x", time=datetime(2026, 1, 1))  # noqa: DTZ001 -- the point of the test
    with pytest.raises(SerializationError, match="no timezone"):
        encode(event)


def test_unencodable_field_names_the_class() -> None:
    """A field JSON cannot hold raises SerializationError naming the class."""
    with pytest.raises(SerializationError, match="Unencodable"):
        encode(Unencodable())


def test_unknown_type_is_reported_with_its_name() -> None:
    """Decoding a type no class is registered for raises UnknownMessageType."""
    record = EncodedMessage("id-1", "test.codec.nobody", 1, b'{"id":"id-1"}')
    with pytest.raises(UnknownMessageType, match="test.codec.nobody") as info:
        decode(record)
    assert info.value.type_name == "test.codec.nobody"


def test_decode_fields_equals_decode() -> None:
    """decode_fields gives what decode gives for the same four fields."""
    record = encode(_order())
    assert decode_fields(*record) == decode(record)


def test_decode_fields_reports_errors_like_decode() -> None:
    """decode_fields names unknown types, misfits and too new versions."""
    with pytest.raises(UnknownMessageType, match="test.codec.nobody"):
        decode_fields("id-1", "test.codec.nobody", 1, b'{"id":"id-1"}')
    with pytest.raises(SerializationError, match="id-2"):
        decode_fields("id-2", "test.codec.renamed", 3, b'{"id":"id-2"}')
    with pytest.raises(SerializationError, match="newer than this code"):
        decode_fields("n", "test.codec.renamed", 4, b'{"id":"n"}')


def test_payload_that_does_not_fit_the_class() -> None:
    """A payload missing a required field fails with the type and id named."""
    record = EncodedMessage("id-2", "test.codec.renamed", 3, b'{"id":"id-2"}')
    with pytest.raises(SerializationError, match="id-2"):
        decode(record)


def test_upcasters_chain_from_old_versions() -> None:
    """Stored version 1 reaches the current version 3 through two upcasters."""

    @upcaster("test.codec.renamed", from_version=1)
    def split_name(data: dict[str, Any]) -> dict[str, Any]:
        data["full_name"] = f"{data.pop('first')} {data.pop('last')}"
        return data

    def add_country(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "country": "NL"}

    register_upcaster("test.codec.renamed", 2, add_country)
    register_upcaster("test.codec.renamed", 2, add_country)  # same function: no-op
    old = Renamed(full_name="unused")
    payload = msgspec.json.encode(
        {
            "id": old.id,
            "source": old.source,
            "time": old.time,
            "first": "Ada",
            "last": "L",
        }
    )
    event = decode(EncodedMessage(old.id, "test.codec.renamed", 1, payload))
    assert event == Renamed(
        id=old.id, source=old.source, time=old.time, full_name="Ada L", country="NL"
    )
    with pytest.raises(ConfigurationError, match="already registered"):
        register_upcaster("test.codec.renamed", 2, split_name)


def test_missing_upcaster_step_is_named() -> None:
    """A gap in the upcaster chain names the missing step."""

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Gappy(Event, type="test.codec.gappy", version=2):
        value: int

    record = EncodedMessage("g", "test.codec.gappy", 1, b'{"id":"g","value":1}')
    with pytest.raises(SerializationError, match="from schema version 1 to 2"):
        decode(record)


def test_newer_stored_version_is_refused() -> None:
    """A record written by newer code is not misread by older code."""
    record = EncodedMessage("n", "test.codec.renamed", 4, b'{"id":"n"}')
    with pytest.raises(SerializationError, match="newer than this code"):
        decode(record)


@pytest.mark.parametrize("from_version", [0, True, "1"])
def test_upcaster_version_is_validated(from_version: object) -> None:
    """Upcaster steps start at version 1."""
    with pytest.raises(ConfigurationError, match="from_version"):
        register_upcaster("test.codec.renamed", from_version, dict)  # type: ignore[arg-type]


def test_payload_must_be_an_object() -> None:
    """Undecodable payload bytes raise SerializationError, not a driver error."""
    with pytest.raises(SerializationError, match="not a JSON object"):
        decode_payload(b"[1, 2]")
    with pytest.raises(SerializationError):
        decode_state(b"{")


def test_state_round_trip() -> None:
    """Snapshot state encodes to JSON and back as plain values."""
    state = {"balance": Decimal("1.50"), "when": datetime(2026, 1, 1, tzinfo=UTC)}
    assert decode_state(encode_state(state)) == {
        "balance": "1.50",
        "when": "2026-01-01T00:00:00Z",
    }
    with pytest.raises(SerializationError):
        encode_state({"x": object()})
