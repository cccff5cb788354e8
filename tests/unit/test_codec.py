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

from orchestrix import (
    EncodedMessage,
    Event,
    SerializationError,
    UnknownMessageType,
    open_store,
)
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
    """A field JSON cannot hold raises SerializationError naming class and field."""
    with pytest.raises(SerializationError, match=r"Unencodable\.payload: .*object"):
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


@dataclass(frozen=True, kw_only=True, slots=True)
class Measured(Event, type="test.codec.measured"):
    sensor: str
    value: float
    readings: dict[str, float] = field(default_factory=dict)


def test_nan_is_refused_naming_class_id_field_and_fix() -> None:
    """NaN is not stored as null: the error names class, id, field and the fix."""
    event = Measured(id="m-1", sensor="s", value=float("nan"))
    with pytest.raises(SerializationError) as info:
        encode(event)
    assert str(info.value) == (
        "cannot encode Measured 'm-1': Measured.value: NaN/Infinity cannot be "
        "stored in JSON (got nan); use a finite float, or None in an optional field"
    )


def test_infinity_inside_a_dict_is_refused_with_its_key() -> None:
    """An infinite float inside a dict field is named down to its key."""
    event = Measured(sensor="s", value=1.0, readings={"a": 1.0, "b": float("inf")})
    with pytest.raises(SerializationError, match=r"Measured\.readings\['b'\]: NaN"):
        encode(event)


def test_value_of_another_type_is_refused_with_the_expected_type() -> None:
    """A str field given an int names the field and what reading it back expects."""
    event = Measured(sensor=123, value=1.0)  # type: ignore[arg-type]
    with pytest.raises(
        SerializationError,
        match=r"Measured\.sensor: Expected `str`, got `int`.*got int 123\)",
    ):
        encode(event)


def test_tuple_that_would_come_back_as_a_list_is_refused() -> None:
    """A tuple in a field typed Any would read back as a list, so it is refused."""
    with pytest.raises(
        SerializationError,
        match=r"Unencodable\.payload: tuple \(1, 2\) reads back as list \[1, 2\]",
    ):
        encode(Unencodable(payload=(1, 2)))


async def test_store_refuses_a_batch_holding_an_unreadable_event() -> None:
    """An append with one event that cannot be read back stores none of them."""
    good = Measured(sensor="s", value=1.0)
    bad = Measured(sensor="s", value=float("-inf"))
    store = await open_store("memory://")
    try:
        with pytest.raises(SerializationError, match=r"Measured\.value"):
            await store.append("codec-batch", [good, bad])
        assert await store.stream_version("codec-batch") == 0
    finally:
        await store.close()


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_deeply_nested_payload_is_a_serialization_error() -> None:
    """A stored payload nested 10,000 levels deep raises SerializationError."""
    deep = b'{"id":"d","payload":' + _nested(10_000) + b"}"
    for read in (decode_payload, decode_state):
        with pytest.raises(SerializationError, match="nested deeper"):
            read(deep)
    with pytest.raises(SerializationError, match="'d' is nested deeper"):
        decode_fields("d", "test.codec.unencodable", 1, deep)
    with pytest.raises(SerializationError, match="nested deeper"):
        decode(EncodedMessage("d", "test.codec.unencodable", 1, deep))


def test_deeply_nested_field_is_refused() -> None:
    """A field value nested 10,000 levels deep is refused, naming the field."""
    deep: list[Any] = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(SerializationError, match=r"Unencodable\.payload: nested"):
        encode(Unencodable(payload=deep))


def test_class_msgspec_cannot_decode_is_refused_when_encoding() -> None:
    """A class whose fields cannot be decoded fails at encode, not forever after."""

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Either(Event, type="test.codec.either"):
        value: Line | Renamed

    with pytest.raises(
        SerializationError, match=r"Either cannot be decoded: Type unions"
    ):
        encode(Either(value=Line(sku="a", quantity=1)))
    with pytest.raises(
        SerializationError, match=r"Either cannot be decoded: Type unions"
    ):
        decode_fields("e", "test.codec.either", 1, b"{}")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_state_refuses_nan_naming_the_key(value: float) -> None:
    """Snapshot state with NaN or Infinity is refused, naming the key's path."""
    with pytest.raises(
        SerializationError, match=r"state\['history'\]\[1\]\['x'\]: NaN/Infinity"
    ):
        encode_state({"balance": 1, "history": [{"x": 1.0}, {"x": value}]})


def test_state_keeps_none_and_names_the_key_of_other_errors() -> None:
    """None stays null in state; an unencodable or too deep value names its key."""
    assert decode_state(encode_state({"owner": None})) == {"owner": None}
    with pytest.raises(SerializationError, match=r"state\['x'\]: Encoding objects"):
        encode_state({"ok": 1, "x": object()})
    with pytest.raises(SerializationError, match=r"state: Encoding objects"):
        encode_state(object())  # type: ignore[arg-type]
    deep: list[Any] = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(
        SerializationError, match=r"state\['deep'\]: nested deeper than the recursion"
    ):
        encode_state({"ok": 1, "deep": deep})


def test_none_in_a_float_dict_names_the_dict() -> None:
    """None where a dict of floats expects a float names the dict field."""
    event = Measured(sensor="s", value=1.0, readings={"a": None})  # type: ignore[dict-item]
    with pytest.raises(
        SerializationError, match=r"Measured\.readings\[\.\.\.\]: Expected `float`"
    ):
        encode(event)


@dataclass(frozen=True, kw_only=True, slots=True)
class Indexed(Event, type="test.codec.indexed"):
    by_number: dict[int, str]
    text: str = ""


def test_wrong_key_type_is_named() -> None:
    """A str key in a dict typed with int keys is refused as a key of that field."""
    event = Indexed(by_number={"one": "a"})  # type: ignore[dict-item]
    with pytest.raises(
        SerializationError,
        match=r"Indexed\.by_number: a key would not read back: Expected `int`",
    ):
        encode(event)


def test_text_that_looks_like_a_naive_datetime_is_stored() -> None:
    """A str holding a datetime without offset is text, not a naive datetime."""
    event = Indexed(by_number={1: "2026-01-02T03:04:05"}, text="2026-01-02T03:04:05")
    assert decode(encode(event)) == event


def test_lone_surrogate_is_refused_naming_the_field() -> None:
    """A str JSON cannot encode (a lone surrogate) names the field and the fix."""
    with pytest.raises(SerializationError, match=r"Indexed\.text: .*lone surrogates"):
        encode(Indexed(by_number={}, text="\ud800"))


class Tagged(msgspec.Struct, frozen=True, rename="camel"):
    long_name: int
    at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class WithStruct(Event, type="test.codec.with-struct"):
    tagged: Tagged


def test_struct_fields_are_checked_under_their_stored_names() -> None:
    """A msgspec Struct round-trips; a wrong value is named by its stored path."""
    event = WithStruct(tagged=Tagged(long_name=1, at=datetime(2026, 1, 1, tzinfo=UTC)))
    assert decode(encode(event)) == event
    with pytest.raises(
        SerializationError, match=r"WithStruct\.tagged\.longName: Expected `int`"
    ):
        encode(WithStruct(tagged=Tagged(long_name="x")))  # type: ignore[arg-type]
    naive = Tagged(long_name=1, at=datetime(2026, 1, 1))  # noqa: DTZ001 -- the point
    with pytest.raises(SerializationError, match=r"WithStruct\.tagged\.at: .*timezone"):
        encode(WithStruct(tagged=naive))


def test_class_whose_hints_cannot_be_read_is_checked_in_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without readable type hints a class loses the fast path, not the check."""

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Opaque(Event, type="test.codec.opaque"):
        amount: int

    def unreadable(*args: object, **kwargs: object) -> dict[str, Any]:
        raise NameError(args)

    monkeypatch.setattr("typing.get_type_hints", unreadable)
    event = Opaque(amount=1)
    assert decode(encode(event)) == event
    with pytest.raises(SerializationError, match=r"Opaque\.amount: Expected `int`"):
        encode(Opaque(amount=1.5))  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True, slots=True)
class Loose(Event, type="test.codec.loose"):
    data: dict[str, Any]
    items: list[Any] = field(default_factory=list)
    pair: tuple[int, Any] = (0, None)


def test_json_values_in_loosely_typed_containers_read_back() -> None:
    """dict[str, Any] and list[Any] keep JSON values; a tuple in them is refused."""
    event = Loose(data={"a": [1, 2.5, None, {"b": "c"}]}, items=[True, "x"])
    assert decode(encode(event)) == event
    with pytest.raises(SerializationError, match=r"Loose\.data\['a'\]: tuple"):
        encode(Loose(data={"a": (1, 2)}))
    with pytest.raises(SerializationError, match=r"Loose\.items\[0\]: tuple"):
        encode(Loose(data={}, items=[(1, 2)]))
    with pytest.raises(SerializationError, match=r"Loose\.pair\[1\]: tuple"):
        encode(Loose(data={}, pair=(1, (2,))))


@dataclass(frozen=True, kw_only=True, slots=True)
class Node:
    name: str
    children: tuple[Node, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Planted(Event, type="test.codec.planted"):
    tree: Node


def test_recursive_dataclasses_read_back_equal() -> None:
    """A recursive dataclass field reads back equal; a wrong leaf is named."""
    event = Planted(tree=Node(name="a", children=(Node(name="b"), Node(name="c"))))
    assert decode(encode(event)) == event
    bad = Node(name="a", children=(Node(name="b", children=[Node(name="c")]),))  # type: ignore[arg-type]
    with pytest.raises(
        SerializationError, match=r"Planted\.tree\.children\[0\]\.children: list"
    ):
        encode(Planted(tree=bad))


@dataclass(frozen=True, kw_only=True, slots=True)
class Normalised(Event, type="test.codec.normalised"):
    cents: int

    def __post_init__(self) -> None:
        # Runs again when decoding: not idempotent, so it never reads back equal.
        object.__setattr__(self, "cents", self.cents * 100)


def test_post_init_that_changes_values_again_is_refused() -> None:
    """A __post_init__ that changes a decoded value again is caught, not trusted."""
    with pytest.raises(SerializationError, match=r"Normalised\.cents: int 100 reads"):
        encode(Normalised(cents=1))


def test_an_upcaster_returning_no_json_raises_serialization_error() -> None:
    """An upcaster whose output JSON cannot hold fails with the type named."""

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Moved(Event, type="test.codec.moved-upcast", version=2):
        to: str

    @upcaster("test.codec.moved-upcast", from_version=1)
    def _bad(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "to": object()}

    stored = encode(Moved(to="x"))._replace(schema_version=1)
    with pytest.raises(SerializationError, match="test.codec.moved-upcast"):
        decode(stored)


def test_an_upcaster_returning_no_dict_raises_serialization_error() -> None:
    """An upcaster must return the payload dict of the next version."""

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Parked(Event, type="test.codec.parked-upcast", version=2):
        spot: str

    @upcaster("test.codec.parked-upcast", from_version=1)
    def _bad(data: dict[str, Any]) -> dict[str, Any]:
        return [data]  # type: ignore[return-value]  # the wrong shape is the point

    stored = encode(Parked(spot="x"))._replace(schema_version=1)
    with pytest.raises(SerializationError, match="not the payload dict"):
        decode(stored)
