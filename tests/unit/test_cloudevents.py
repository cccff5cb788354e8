"""Unit tests for `orchestrix.cloudevents`: the value, the modes and the mappings."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from orchestrix import Command, Event, Recorded, open_store
from orchestrix.cloudevents import (
    BATCH_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    cloudevent_to_recorded,
    format_time,
    from_batch,
    from_binary,
    from_cloudevent,
    from_http,
    from_structured,
    recorded_to_cloudevent,
    to_batch,
    to_binary,
    to_cloudevent,
    to_structured,
)
from orchestrix.codec import encode, upcaster
from orchestrix.errors import (
    CloudEventsFormatError,
    SerializationError,
    UnknownMessageType,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Line:
    sku: str
    quantity: int


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderPlaced(Event, type="test.cloudevents.order-placed"):
    order_id: uuid.UUID
    total: Decimal
    due: datetime
    lines: tuple[Line, ...] = ()
    note: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Renamed(Event, type="test.cloudevents.renamed", version=2):
    full_name: str


@upcaster("test.cloudevents.renamed", from_version=1)
def _split_to_full(payload: dict[str, Any]) -> dict[str, Any]:
    first, last = payload.pop("first"), payload.pop("last")
    return {**payload, "full_name": f"{first} {last}"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Ship(Command, type="test.cloudevents.ship"):
    order_id: str


def _order(**changes: Any) -> OrderPlaced:
    values: dict[str, Any] = {
        "order_id": uuid.UUID("0b8c2f7e-3f59-4f0c-9d43-3c1a6b3e0f11"),
        "total": Decimal("10.50"),
        "due": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "lines": (Line(sku="a-1", quantity=2), Line(sku="b-2", quantity=1)),
        "subject": "orders/42",
        "correlation_id": "corr-1",
        "causation_id": "cause-1",
    }
    values.update(changes)
    return OrderPlaced(**values)


def _minimal(**changes: Any) -> CloudEvent:
    values: dict[str, Any] = {"id": "1", "source": "/s", "type": "t"}
    values.update(changes)
    return CloudEvent(**values)


# --- messages -------------------------------------------------------------------------


def test_message_maps_to_attributes_extensions_and_data() -> None:
    """Envelope fields become attributes and extensions; own fields become data."""
    message = _order()
    event = to_cloudevent(message)
    assert event.id == message.id
    assert event.source == message.source
    assert event.type == "test.cloudevents.order-placed"
    assert event.specversion == "1.0"
    assert event.subject == "orders/42"
    assert event.time == format_time(message.time)
    assert event.datacontenttype == "application/json"
    assert dict(event.extensions) == {
        "correlationid": "corr-1",
        "causationid": "cause-1",
        "schemaversion": "1",
    }
    assert event.data == {
        "order_id": "0b8c2f7e-3f59-4f0c-9d43-3c1a6b3e0f11",
        "total": "10.50",
        "due": "2026-01-02T03:04:05.678901Z",
        "lines": [{"sku": "a-1", "quantity": 2}, {"sku": "b-2", "quantity": 1}],
        "note": None,
    }


def test_message_round_trips_through_every_mode() -> None:
    """A message survives structured, batch and binary mode with all field types."""
    message = _order(time=datetime(2026, 5, 6, 7, 8, 9, 12, tzinfo=UTC))
    assert from_cloudevent(to_cloudevent(message)) == message
    assert from_cloudevent(from_structured(to_structured(message)[1])) == message
    assert [from_cloudevent(e) for e in from_batch(to_batch([message])[1])] == [message]
    assert from_cloudevent(from_binary(*to_binary(message))) == message


def test_unset_optional_envelope_fields_are_left_out() -> None:
    """A message without subject or correlation carries neither attribute."""
    event = to_cloudevent(Ship(order_id="o-1"))
    assert event.subject is None
    assert dict(event.extensions) == {"schemaversion": "1"}
    assert "ce-subject" not in to_binary(event)[0]


def test_time_with_offset_keeps_its_offset() -> None:
    """A message time in another zone is written with that offset, exactly."""
    moment = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    message = _order(time=moment)
    assert to_cloudevent(message).time == "2026-01-01T12:00:00-05:00"
    assert from_cloudevent(to_cloudevent(message)).time == moment


def test_from_cloudevent_checks_the_expected_class() -> None:
    """Passing a class narrows the result and rejects a different type."""
    event = to_cloudevent(Ship(order_id="o-1"))
    assert from_cloudevent(event, Ship).order_id == "o-1"
    with pytest.raises(SerializationError, match="not the expected OrderPlaced"):
        from_cloudevent(event, OrderPlaced)


def test_from_cloudevent_runs_upcasters_for_older_schema_versions() -> None:
    """An event of schema version 1 is upcast to the current class."""
    event = _minimal(
        type="test.cloudevents.renamed",
        extensions={"schemaversion": "1"},
        data={"first": "Ada", "last": "Lovelace"},
    )
    assert from_cloudevent(event, Renamed).full_name == "Ada Lovelace"
    integer = replace(event, extensions={"schemaversion": 1})
    assert from_cloudevent(integer, Renamed).full_name == "Ada Lovelace"


def test_missing_schema_version_means_version_one() -> None:
    """Events from other producers without schemaversion are version 1."""
    event = _minimal(type="test.cloudevents.ship", data={"order_id": "x"})
    assert from_cloudevent(event, Ship).order_id == "x"


@pytest.mark.parametrize("version", ["0", "01", "x", "-1", 0, True, ""])
def test_invalid_schema_version_is_rejected(version: str | int) -> None:
    """The schemaversion must be a whole number >= 1 in canonical form."""
    event = _minimal(
        type="test.cloudevents.ship", extensions={"schemaversion": version}
    )
    with pytest.raises(CloudEventsFormatError) as exc:
        from_cloudevent(event)
    assert exc.value.attribute == "schemaversion"


def test_newer_schema_version_is_rejected() -> None:
    """An event newer than the local class is refused, not misread."""
    event = _minimal(type="test.cloudevents.ship", extensions={"schemaversion": "9"})
    with pytest.raises(SerializationError, match="newer than this code"):
        from_cloudevent(event)


def test_unknown_type_raises_unknown_message_type() -> None:
    """A type with no class raises UnknownMessageType naming it."""
    with pytest.raises(UnknownMessageType) as exc:
        from_cloudevent(_minimal(type="test.cloudevents.nobody"))
    assert exc.value.type_name == "test.cloudevents.nobody"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"datacontenttype": "text/plain", "data": "x"}, "needs JSON data"),
        ({"data": [1, 2]}, "JSON object"),
        ({"data": {"order_id": "x", "id": "y"}}, "envelope fields"),
        ({"datacontenttype": "application/json", "data": b"{"}, "does not hold JSON"),
        ({"data": {"order_id": 5}}, "does not fit"),
    ],
)
def test_data_that_cannot_be_a_message_is_rejected(
    changes: dict[str, Any], match: str
) -> None:
    """Non-JSON, non-object, clashing or ill-typed data raises SerializationError."""
    event = _minimal(type="test.cloudevents.ship", **changes)
    with pytest.raises(SerializationError, match=match):
        from_cloudevent(event)


def test_base64_json_data_decodes_to_a_message() -> None:
    """JSON data sent as data_base64 still converts to a message."""
    event = _minimal(
        type="test.cloudevents.ship",
        datacontenttype="application/json",
        data=b'{"order_id": "o-9"}',
    )
    assert from_cloudevent(event, Ship).order_id == "o-9"


def test_correlation_extensions_must_be_strings() -> None:
    """The correlationid given as an Integer cannot become a message field."""
    event = _minimal(type="test.cloudevents.ship", extensions={"correlationid": 5})
    with pytest.raises(CloudEventsFormatError) as exc:
        from_cloudevent(event)
    assert exc.value.attribute == "correlationid"


def test_time_with_nanoseconds_lowercase_and_leap_second_converts() -> None:
    """Times Python cannot hold exactly are truncated only in the message."""
    event = _minimal(
        type="test.cloudevents.ship",
        time="2016-12-31t23:59:60.123456789z",
        data={"order_id": "o"},
    )
    message = from_cloudevent(event)
    assert message.time == datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert event.time == "2016-12-31t23:59:60.123456789z"
    nanos = replace(event, time="2020-01-01T00:00:00.123456789+01:00")
    assert from_cloudevent(nanos).time == datetime(
        2020, 1, 1, 0, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1))
    )


def test_missing_time_gets_the_current_time() -> None:
    """Without a time attribute the message is stamped when converted."""
    before = datetime.now(UTC)
    message = from_cloudevent(
        _minimal(type="test.cloudevents.ship", data={"order_id": "o"})
    )
    assert message.time >= before


def test_extra_extensions_are_added_and_own_names_are_protected() -> None:
    """to_cloudevent adds extensions, but not over the mapping's own names."""
    event = to_cloudevent(Ship(order_id="o"), extensions={"traceparent": "00-ab"})
    assert event.extensions["traceparent"] == "00-ab"
    with pytest.raises(CloudEventsFormatError) as exc:
        to_cloudevent(Ship(order_id="o"), extensions={"correlationid": "x"})
    assert exc.value.attribute == "correlationid"


def test_message_that_json_cannot_hold_raises_serialization_error() -> None:
    """A lone surrogate in a field is a SerializationError, not a Unicode crash."""
    with pytest.raises(SerializationError, match="cannot encode"):
        to_cloudevent(Ship(order_id="\udc00"))


@pytest.mark.parametrize(
    ("changes", "attribute"),
    [({"subject": ""}, "subject"), ({"source": "not a uri"}, "source")],
)
def test_message_breaking_a_rule_cannot_be_converted(
    changes: dict[str, Any], attribute: str
) -> None:
    """An empty subject or a source that is no URI-reference is named."""
    with pytest.raises(CloudEventsFormatError) as exc:
        to_cloudevent(Ship(order_id="o", **changes))
    assert exc.value.attribute == attribute


# --- stored events --------------------------------------------------------------------


def _recorded(**changes: Any) -> Recorded:
    values: dict[str, Any] = {
        "stream_id": "order-42 ü",
        "version": 3,
        "position": 2**40,
        "recorded_at": datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=UTC),
        "record": encode(_order()),
    }
    values.update(changes)
    return Recorded(**values)


def test_recorded_exports_its_place_in_the_store() -> None:
    """Stream id, version, position and commit time travel as extensions."""
    message = _order()
    event = recorded_to_cloudevent(_recorded(record=encode(message)))
    assert event.extensions["streamid"] == "order-42 ü"
    assert event.extensions["streamversion"] == "3"
    assert event.extensions["streamposition"] == str(2**40)
    assert event.extensions["recordedat"] == "2026-03-04T05:06:07.000089Z"
    names = ("streamid", "streamversion", "streamposition", "recordedat")
    rest = {k: v for k, v in event.extensions.items() if k not in names}
    assert replace(event, extensions=rest) == to_cloudevent(message)


def test_extra_extensions_cannot_spoof_a_stored_place() -> None:
    """The stream extensions are reserved for recorded_to_cloudevent."""
    with pytest.raises(CloudEventsFormatError):
        to_cloudevent(_order(), extensions={"streamid": "x"})


@pytest.mark.parametrize("mode", ["object", "structured", "binary", "batch"])
def test_recorded_round_trips_without_loss(mode: str) -> None:
    """Every value of a stored event, its payload bytes included, comes back."""
    recorded = _recorded()
    event = recorded_to_cloudevent(recorded)
    if mode == "structured":
        event = from_structured(to_structured(event)[1])
    elif mode == "binary":
        event = from_binary(*to_binary(event))
    elif mode == "batch":
        [event] = from_batch(to_batch([event])[1])
    back = cloudevent_to_recorded(event)
    assert back == recorded
    assert back.record.payload == recorded.record.payload
    assert back.event == recorded.event


def test_recorded_without_its_class_still_exports() -> None:
    """A record whose type has no class converts from its stored form alone."""
    record = encode(Ship(order_id="o"))._replace(type="test.cloudevents.gone")
    event = recorded_to_cloudevent(_recorded(record=record))
    assert event.type == "test.cloudevents.gone"
    assert cloudevent_to_recorded(event).record == record


async def test_events_from_a_store_export_and_return() -> None:
    """Events read back from a store convert to CloudEvents and back, equal."""
    store = await open_store("memory://")
    try:
        await store.append("orders-1", [_order(), _order(note="second")])
        recorded = [r async for r in store.read("orders-1")]
    finally:
        await store.close()
    batch = to_batch(recorded_to_cloudevent(r) for r in recorded)[1]
    back = [cloudevent_to_recorded(e) for e in from_batch(batch)]
    assert back == recorded
    assert [e.extensions["streamversion"] for e in from_batch(batch)] == ["1", "2"]


@pytest.mark.parametrize(
    ("extensions", "attribute"),
    [
        ({}, "streamid"),
        ({"streamid": 5}, "streamid"),
        ({"streamid": ""}, "streamid"),
        ({"streamid": "s"}, "recordedat"),
        ({"streamid": "s", "recordedat": "2020-01-01T00:00:00Z"}, "streamversion"),
        (
            {
                "streamid": "s",
                "recordedat": "x",
                "streamversion": "1",
                "streamposition": "1",
            },
            "recordedat",
        ),
        (
            {
                "streamid": "s",
                "recordedat": "2020-01-01T00:00:00Z",
                "streamversion": 1,
                "streamposition": "0",
            },
            "streamposition",
        ),
    ],
)
def test_cloudevent_without_a_valid_place_is_not_a_recorded_event(
    extensions: dict[str, Any], attribute: str
) -> None:
    """Missing or invalid stream extensions are named."""
    event = _minimal(extensions=extensions)
    with pytest.raises(CloudEventsFormatError) as exc:
        cloudevent_to_recorded(event)
    assert exc.value.attribute == attribute


def test_integer_stream_counters_are_accepted() -> None:
    """The streamversion and streamposition may arrive as Integers."""
    event = _minimal(
        extensions={
            "streamid": "s",
            "streamversion": 7,
            "streamposition": 9,
            "recordedat": "2020-01-01T00:00:00+02:00",
        }
    )
    recorded = cloudevent_to_recorded(event)
    assert (recorded.version, recorded.position) == (7, 9)
    assert recorded.recorded_at == datetime(2019, 12, 31, 22, tzinfo=UTC)


# --- the CloudEvent value -------------------------------------------------------------


def test_cloudevent_is_immutable() -> None:
    """Attributes and extensions cannot be changed after construction."""
    source = {"ext": "a"}
    event = _minimal(extensions=source)
    source["ext"] = "b"
    assert event.extensions["ext"] == "a"
    with pytest.raises(AttributeError):
        event.id = "2"  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.extensions["ext"] = "c"  # type: ignore[index]


def test_attributes_lists_everything_that_is_set() -> None:
    """attributes() gives context attributes then extensions, unset ones left out."""
    event = _minimal(subject="x", extensions={"a1": True})
    assert event.attributes() == {
        "specversion": "1.0",
        "id": "1",
        "source": "/s",
        "type": "t",
        "subject": "x",
        "a1": True,
    }
    assert event.parsed_time() is None


@pytest.mark.parametrize(
    ("changes", "attribute", "fragment"),
    [
        ({"id": ""}, "id", "non-empty"),
        ({"source": ""}, "source", "non-empty"),
        ({"type": ""}, "type", "non-empty"),
        ({"id": 5}, "id", "must be a String"),
        ({"specversion": "0.3"}, "specversion", "'1.0'"),
        ({"subject": ""}, "subject", "non-empty"),
        ({"subject": "a\nb"}, "subject", "U+000A"),
        ({"type": "a\x85b"}, "type", "U+0085"),
        ({"type": "a\ufffeb"}, "type", "U+FFFE"),
        ({"type": "a\ud800b"}, "type", "U+D800"),
        ({"type": "a\U0010ffff"}, "type", "U+10FFFF"),
        ({"dataschema": "/relative"}, "dataschema", "absolute URI"),
        ({"dataschema": ""}, "dataschema", "non-empty"),
        ({"source": "a b"}, "source", "percent-encode"),
        ({"source": "/caf\u00e9"}, "source", "percent-encode"),
        ({"source": "/100%"}, "source", "percent-encoding"),
        ({"source": "1ab:c"}, "source", "scheme"),
        ({"source": "http://h:x/"}, "source", "port"),
        ({"source": "http://[zz]/"}, "source", "IP literal"),
        ({"source": "http://a b/"}, "source", "host"),
        ({"source": "http://u^@h/"}, "source", "userinfo"),
        ({"source": "/a#b#c"}, "source", "fragment"),
        ({"datacontenttype": "json"}, "datacontenttype", "media type"),
        ({"datacontenttype": "text/plain; charset"}, "datacontenttype", "media type"),
        ({"time": "2020-01-01 00:00:00Z"}, "time", "RFC 3339"),
        ({"time": "2020-01-01T00:00:00"}, "time", "RFC 3339"),
        ({"time": "2020-02-30T00:00:00Z"}, "time", "does not exist"),
        ({"time": "2021-02-29T00:00:00Z"}, "time", "does not exist"),
        ({"time": "2020-13-01T00:00:00Z"}, "time", "does not exist"),
        ({"time": "2020-01-01T24:00:00Z"}, "time", "out of range"),
        ({"time": "2020-01-01T00:00:61Z"}, "time", "out of range"),
        ({"time": "2020-01-01T00:00:00+24:00"}, "time", "out of range"),
        ({"time": "2020-01-01T00:00:00.Z"}, "time", "RFC 3339"),
        ({"time": "٢٠٢٠-01-01T00:00:00Z"}, "time", "RFC 3339"),
        ({"extensions": {"Ext": "x"}}, "Ext", "lower-case"),
        ({"extensions": {"my_ext": "x"}}, "my_ext", "lower-case"),
        ({"extensions": {"": "x"}}, "", "lower-case"),
        ({"extensions": {"data": "x"}}, "data", "reserved"),
        ({"extensions": {"subject": "x"}}, "subject", "reserved"),
        ({"extensions": {"n": 2**31}}, "n", "32-bit"),
        ({"extensions": {"n": -(2**31) - 1}}, "n", "32-bit"),
        ({"extensions": {"n": 1.5}}, "n", "whole number"),
        ({"extensions": {"n": None}}, "n", "String (str)"),
        ({"extensions": {"n": b"x"}}, "n", "base64"),
        ({"extensions": {"n": "\x00"}}, "n", "U+0000"),
        ({"datacontenttype": "text/plain", "data": {"a": 1}}, "data", "non-JSON"),
        ({"data": {"a": float("nan")}}, "data", "no representation"),
        ({"data": {1: "a"}}, "data", "keys must be str"),
        ({"data": (1, 2)}, "data", "JSON value"),
        ({"data": [{"a": {1, 2}}]}, "data", "JSON value"),
    ],
)
def test_constructor_names_the_broken_rule(
    changes: dict[str, Any], attribute: str, fragment: str
) -> None:
    """Every rule of the type system is checked, naming attribute and rule."""
    with pytest.raises(CloudEventsFormatError) as exc:
        _minimal(**changes)
    assert exc.value.attribute == attribute
    assert fragment in exc.value.rule
    assert "invalid CloudEvent" in str(exc.value)


def test_extensions_must_be_a_mapping() -> None:
    """A list of pairs is not accepted as extensions."""
    with pytest.raises(CloudEventsFormatError, match="mapping"):
        _minimal(extensions=[("a", "b")])
    with pytest.raises(CloudEventsFormatError, match="must be str"):
        _minimal(extensions={1: "b"})


def test_deeply_nested_data_is_rejected() -> None:
    """Pathological nesting fails with a clear rule rather than a crash."""
    data: Any = []
    for _ in range(600):
        data = [data]
    with pytest.raises(CloudEventsFormatError, match="nested too deeply"):
        _minimal(data=data)


@pytest.mark.parametrize(
    "changes",
    [
        {"source": "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"},
        {"source": "mailto:cncf-wg-serverless@lists.cncf.io"},
        {"source": "1-555-123-4567"},
        {"source": "//github.com/cloudevents/x?y=1#frag"},
        {"source": "http://user:pw@[::1]:8080/p%C3%A9"},
        {"source": "http://[v1.fe]/"},
        {"source": "/caf%C3%A9"},
        {"dataschema": "https://example.com/schema.json"},
        {"time": "1985-04-12T23:20:50.52Z"},
        {"time": "1996-12-19T16:39:57-08:00"},
        {"time": "1990-12-31T23:59:60Z"},
        {"time": "2020-02-29t00:00:00.000000001z"},
        {"time": "2000-02-29T00:00:00Z"},
        {"datacontenttype": 'text/plain; charset="utf-8"'},
        {"datacontenttype": "application/vnd.x+json;v=1", "data": [1]},
        {"extensions": {"n": 2**31 - 1, "m": -(2**31), "b": False, "e": ""}},
        {"extensions": {"averyveryverylongextensionname": "x"}},
        {"subject": "emoji \U0001f30e ok"},
        {"data": "a JSON string"},
        {"data": b""},
        {"data": False},
    ],
)
def test_constructor_accepts_valid_edge_cases(changes: dict[str, Any]) -> None:
    """Valid values at the edges of each rule are accepted unchanged."""
    event = _minimal(**changes)
    for name, given in changes.items():
        assert getattr(event, name) == given


def test_parsed_time_keeps_the_offset() -> None:
    """parsed_time returns an aware datetime in the text's own offset."""
    event = _minimal(time="2018-04-26T14:48:09.1234+02:00")
    moment = event.parsed_time()
    assert moment == datetime(2018, 4, 26, 12, 48, 9, 123400, tzinfo=UTC)
    assert moment is not None
    assert moment.utcoffset() == timedelta(hours=2)


def test_format_time_uses_z_and_whole_minute_offsets() -> None:
    """format_time writes Z for UTC and converts second-precise offsets to UTC."""
    assert format_time(datetime(2020, 1, 1, tzinfo=UTC)) == "2020-01-01T00:00:00Z"
    odd = timezone(timedelta(minutes=30, seconds=15))
    assert format_time(datetime(2020, 1, 1, 1, tzinfo=odd)) == "2020-01-01T00:29:45Z"
    minus = timezone(-timedelta(hours=3, minutes=30))
    assert (
        format_time(datetime(2020, 1, 1, tzinfo=minus)) == "2020-01-01T00:00:00-03:30"
    )
    with pytest.raises(CloudEventsFormatError, match="timezone-aware"):
        format_time(datetime(2020, 1, 1))  # noqa: DTZ001 -- the naive case under test


def test_far_timestamp_fails_only_when_converted() -> None:
    """Year 0000 is valid RFC 3339 but has no datetime; conversion says so."""
    event = _minimal(time="0000-01-01T00:00:00Z")
    with pytest.raises(CloudEventsFormatError, match="outside the range"):
        event.parsed_time()


# --- structured mode and batches ------------------------------------------------------


def test_structured_output_is_the_json_format() -> None:
    """Structured mode writes every attribute as a member, data as JSON."""
    headers, body = to_structured(
        _minimal(subject="s", extensions={"i": 1, "b": True, "t": "x"}, data={"k": [1]})
    )
    assert headers == {"content-type": STRUCTURED_CONTENT_TYPE}
    assert json.loads(body) == {
        "specversion": "1.0",
        "id": "1",
        "source": "/s",
        "type": "t",
        "subject": "s",
        "i": 1,
        "b": True,
        "t": "x",
        "data": {"k": [1]},
    }


@pytest.mark.parametrize(
    "event",
    [
        _minimal(),
        _minimal(data=None, datacontenttype="text/xml"),
        _minimal(datacontenttype="text/xml", data="<a>\u00e9</a>"),
        _minimal(datacontenttype="application/octet-stream", data=b"\x00\xff"),
        _minimal(data="just a JSON string"),
        _minimal(data=[1, "two", None, 3.5, {"x": False}]),
        _minimal(data=0),
        _minimal(time="2020-01-01t00:00:00.123456789z", extensions={"e": ""}),
        _minimal(dataschema="urn:x:y", extensions={"n": -(2**31), "b": False}),
    ],
    ids=[
        "minimal",
        "no-data-with-type",
        "xml",
        "bytes",
        "json-string",
        "json-array",
        "json-zero",
        "nanoseconds",
        "typed-extensions",
    ],
)
def test_structured_round_trip_is_exact(event: CloudEvent) -> None:
    """Parsing what structured mode wrote gives an equal event, types included."""
    assert from_structured(to_structured(event)[1]) == event
    assert from_batch(to_batch([event, event])[1]) == [event, event]


def test_bytes_travel_as_data_base64() -> None:
    """Binary data is written as data_base64 and read back as bytes."""
    body = to_structured(_minimal(datacontenttype="image/png", data=b"\x89PNG"))[1]
    document = json.loads(body)
    assert document["data_base64"] == base64.b64encode(b"\x89PNG").decode()
    assert "data" not in document


@pytest.mark.parametrize(
    ("document", "attribute", "fragment"),
    [
        ({"id": "1", "source": "/s", "type": "t"}, "specversion", "missing"),
        ({"specversion": "1.0", "source": "/s", "type": "t"}, "id", "missing"),
        ({"specversion": "1.0", "id": "1", "type": "t"}, "source", "missing"),
        ({"specversion": "1.0", "id": "1", "source": "/s"}, "type", "missing"),
        (
            {"specversion": "1.0", "id": None, "source": "/s", "type": "t"},
            "id",
            "missing",
        ),
        (
            {"specversion": 1.0, "id": "1", "source": "/s", "type": "t"},
            "specversion",
            "",
        ),
        ({"specversion": "1.0", "id": 1, "source": "/s", "type": "t"}, "id", "String"),
        (
            {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "X": 1},
            "X",
            "lower-case",
        ),
        (
            {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "e": [1]},
            "e",
            "String (str)",
        ),
        (
            {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "e": {}},
            "e",
            "String (str)",
        ),
        (
            {
                "specversion": "1.0",
                "id": "1",
                "source": "/s",
                "type": "t",
                "data": 1,
                "data_base64": "AA==",
            },
            "data_base64",
            "both",
        ),
        (
            {
                "specversion": "1.0",
                "id": "1",
                "source": "/s",
                "type": "t",
                "data_base64": "A",
            },
            "data_base64",
            "base64",
        ),
        (
            {
                "specversion": "1.0",
                "id": "1",
                "source": "/s",
                "type": "t",
                "data_base64": 5,
            },
            "data_base64",
            "base64",
        ),
        (
            {
                "specversion": "1.0",
                "id": "1",
                "source": "/s",
                "type": "t",
                "datacontenttype": "text/plain",
                "data": {"a": 1},
            },
            "data",
            "non-JSON",
        ),
    ],
)
def test_structured_parse_names_the_broken_rule(
    document: dict[str, Any], attribute: str, fragment: str
) -> None:
    """Invalid structured events are rejected naming attribute and rule."""
    with pytest.raises(CloudEventsFormatError) as exc:
        from_structured(json.dumps(document))
    assert exc.value.attribute == attribute
    assert fragment in exc.value.rule


def test_json_null_means_absent() -> None:
    """Optional attributes, extensions and data given as null are unset."""
    event = from_structured(
        '{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":null,'
        '"ext":null,"data":null,"data_base64":"AA=="}'
    )
    assert event == _minimal(data=b"\x00")


@pytest.mark.parametrize("body", [b"", b"[1]", b'"x"', b"{", b"\xff", b"null"])
def test_structured_body_must_be_one_json_object(body: bytes) -> None:
    """Anything but one JSON object is refused without an attribute."""
    with pytest.raises(CloudEventsFormatError) as exc:
        from_structured(body)
    assert exc.value.attribute is None


def test_batch_may_be_empty() -> None:
    """An empty JSON array is a valid, empty batch."""
    assert from_batch(b"[]") == []
    assert to_batch([]) == ({"content-type": BATCH_CONTENT_TYPE}, b"[]")


@pytest.mark.parametrize("body", [b"{}", b'{"specversion":"1.0"}', b"1", b"null"])
def test_batch_must_be_an_array(body: bytes) -> None:
    """A batch that is not a JSON array is refused."""
    with pytest.raises(CloudEventsFormatError, match="JSON array") as exc:
        from_batch(body)
    assert exc.value.index is None


def test_batch_names_the_failing_item() -> None:
    """A broken event inside a batch is reported with its index."""
    good = json.loads(to_structured(_minimal())[1])
    bad = dict(good, id="")
    with pytest.raises(CloudEventsFormatError) as exc:
        from_batch(json.dumps([good, good, bad]))
    assert (exc.value.index, exc.value.attribute) == (2, "id")
    assert "batch item 2" in str(exc.value)
    with pytest.raises(CloudEventsFormatError) as exc:
        from_batch(json.dumps([good, 5]))
    assert exc.value.index == 1


def test_batch_output_names_the_failing_item() -> None:
    """An event whose data cannot be written is reported with its index."""
    broken = _minimal(data={"s": "\ud800"})
    with pytest.raises(CloudEventsFormatError) as exc:
        to_batch([_minimal(), broken])
    assert exc.value.index == 1
    with pytest.raises(CloudEventsFormatError) as exc:
        to_batch([_minimal(), Ship(order_id="o", subject="")])
    assert (exc.value.index, exc.value.attribute) == (1, "subject")


def test_lone_surrogate_in_data_is_a_format_error() -> None:
    """Data that JSON cannot encode fails with the data attribute named."""
    with pytest.raises(CloudEventsFormatError) as exc:
        to_structured(_minimal(data="\udc00"))
    assert exc.value.attribute == "data"


# --- binary mode ----------------------------------------------------------------------


def test_binary_headers_are_percent_encoded() -> None:
    """Non-ASCII, space, double quote and percent are percent-encoded as UTF-8."""
    event = _minimal(
        subject='caf\u00e9 "100%" \U0001f30e',
        extensions={"e": "tab\u00a0here", "b": True, "n": -5, "plain": "a!~z"},
    )
    headers, body = to_binary(event)
    assert headers["ce-subject"] == "caf%C3%A9%20%22100%25%22%20%F0%9F%8C%8E"
    assert headers["ce-b"] == "true"
    assert headers["ce-n"] == "-5"
    assert headers["ce-plain"] == "a!~z"
    assert all(v.isascii() and v.isprintable() for v in headers.values())
    assert body == b""
    back = from_binary(headers, body)
    assert back.subject == event.subject
    assert dict(back.extensions) == {
        "e": "tab\u00a0here",
        "b": "true",
        "n": "-5",
        "plain": "a!~z",
    }


def test_binary_mode_maps_datacontenttype_to_content_type() -> None:
    """The datacontenttype is the content-type header, never a ce- header."""
    headers, body = to_binary(
        _minimal(datacontenttype="application/json", data={"a": 1})
    )
    assert headers["content-type"] == "application/json"
    assert "ce-datacontenttype" not in headers
    assert json.loads(body) == {"a": 1}


@pytest.mark.parametrize(
    "event",
    [
        _minimal(),
        _minimal(data={"a": [1, 2]}),
        _minimal(datacontenttype="application/json", data="a string"),
        _minimal(datacontenttype="text/plain; charset=utf-8", data="h\u00e9llo\n"),
        _minimal(datacontenttype="text/plain; charset=us-ascii", data="hello"),
        _minimal(datacontenttype="application/xml", data="<x/>"),
        _minimal(datacontenttype="image/png", data=b"\x89PNG\r\n"),
        _minimal(datacontenttype="text/plain", data=b"\xff\xfe"),
        _minimal(datacontenttype="text/plain; charset=latin-1", data=b"caf\xe9"),
        _minimal(
            subject="s \u00e9",
            time="2020-01-01T00:00:00.5-01:30",
            dataschema="https://x/s",
            extensions={"a": "1", "b": "%"},
        ),
    ],
    ids=[
        "none",
        "json",
        "json-string",
        "utf8",
        "ascii",
        "xml",
        "png",
        "bad-utf8",
        "latin1",
        "attributes",
    ],
)
def test_binary_round_trip_is_exact(event: CloudEvent) -> None:
    """Parsing what binary mode wrote gives an equal event (String extensions)."""
    headers, body = to_binary(event)
    assert from_binary(headers, body) == event
    assert from_http(headers, body) == [event]


def test_binary_header_names_are_case_insensitive_and_values_trimmed() -> None:
    """CE-Id and Content-Type match in any case; surrounding spaces are dropped."""
    event = from_binary(
        [
            ("CE-SpecVersion", "1.0"),
            ("Ce-Id", "  1 "),
            ("ce-SOURCE", "/s"),
            ("ce-type", "t"),
            ("Content-Type", " text/plain "),
            ("X-Other", "ignored"),
        ],
        b"hi",
    )
    assert event == _minimal(datacontenttype="text/plain", data="hi")


@pytest.mark.parametrize(
    ("headers", "attribute", "fragment"),
    [
        (
            {"ce-id": "1", "ce-source": "/s", "ce-type": "t"},
            "specversion",
            "ce-specversion",
        ),
        ({"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t"}, "id", "missing"),
        (
            {"ce-specversion": "0.3", "ce-id": "1", "ce-source": "/s", "ce-type": "t"},
            "specversion",
            "1.0",
        ),
        (
            {"ce-specversion": "1.0", "ce-id": "", "ce-source": "/s", "ce-type": "t"},
            "id",
            "non-empty",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "%zz",
                "ce-source": "/s",
                "ce-type": "t",
            },
            "id",
            "'%XX'",
        ),
        (
            {"ce-specversion": "1.0", "ce-id": "a%", "ce-source": "/s", "ce-type": "t"},
            "id",
            "'%XX'",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "%FF",
                "ce-source": "/s",
                "ce-type": "t",
            },
            "id",
            "UTF-8",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "\u00e9",
                "ce-source": "/s",
                "ce-type": "t",
            },
            "id",
            "US-ASCII",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "a\x01",
                "ce-source": "/s",
                "ce-type": "t",
            },
            "id",
            "US-ASCII",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "%0A",
                "ce-source": "/s",
                "ce-type": "t",
            },
            "id",
            "U+000A",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/s",
                "ce-type": "t",
                "ce-my_ext": "x",
            },
            "my_ext",
            "lower-case",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/s",
                "ce-type": "t",
                "ce-datacontenttype": "x/y",
            },
            "datacontenttype",
            "content-type",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/s",
                "ce-type": "t",
                "ce-data": "x",
            },
            "data",
            "reserved",
        ),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/s",
                "ce-type": "t",
                "content-type": "bad",
            },
            "datacontenttype",
            "media type",
        ),
    ],
)
def test_binary_parse_names_the_broken_rule(
    headers: dict[str, str], attribute: str, fragment: str
) -> None:
    """Invalid binary-mode messages are rejected naming attribute and rule."""
    with pytest.raises(CloudEventsFormatError) as exc:
        from_binary(headers, b"")
    assert exc.value.attribute == attribute
    assert fragment in exc.value.rule


def test_binary_rejects_duplicate_headers() -> None:
    """A ce- header or content-type given twice is ambiguous and refused."""
    base = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "/s"),
        ("ce-type", "t"),
    ]
    with pytest.raises(CloudEventsFormatError, match="twice"):
        from_binary([*base, ("CE-ID", "2")], b"")
    with pytest.raises(CloudEventsFormatError, match="twice"):
        from_binary([*base, ("content-type", "a/b"), ("Content-Type", "a/b")], b"")


def test_binary_json_body_must_be_json() -> None:
    """A body that claims JSON (or has no content type) must parse as JSON."""
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
    with pytest.raises(CloudEventsFormatError, match="JSON"):
        from_binary(headers, b"not json")
    with pytest.raises(CloudEventsFormatError, match="JSON"):
        from_binary({**headers, "content-type": "application/json"}, b"{")
    assert from_binary(headers, b' {"a": 1} ').data == {"a": 1}


def test_binary_output_refuses_untyped_bytes_and_unencodable_text() -> None:
    """Bytes need a content type, and text must fit its declared charset."""
    with pytest.raises(CloudEventsFormatError) as exc:
        to_binary(_minimal(data=b"\x00"))
    assert exc.value.attribute == "datacontenttype"
    with pytest.raises(CloudEventsFormatError, match="us-ascii"):
        to_binary(
            _minimal(datacontenttype="text/plain; charset=us-ascii", data="\u00e9")
        )
    with pytest.raises(CloudEventsFormatError, match="no-such"):
        to_binary(_minimal(datacontenttype="text/plain; charset=no-such", data="x"))


def test_binary_mode_cannot_tell_empty_data_from_none() -> None:
    """An empty body means no data, so empty text comes back as None."""
    event = _minimal(datacontenttype="text/plain", data="")
    assert from_binary(*to_binary(event)).data is None


# --- any mode -------------------------------------------------------------------------


def test_from_http_detects_the_mode() -> None:
    """The content type selects structured, batch or binary mode."""
    event = _minimal(data={"a": 1})
    assert from_http(*to_structured(event)) == [event]
    assert from_http(*to_batch([event, event])) == [event, event]
    assert from_http(*to_binary(event)) == [event]
    upper = {"Content-Type": "Application/CloudEvents+JSON; charset=UTF-8"}
    assert from_http(upper, to_structured(event)[1]) == [event]
    pairs = [("content-type", "application/cloudevents+json")]
    assert from_http(pairs, to_structured(event)[1]) == [event]


def test_structured_mode_ignores_ce_headers() -> None:
    """In structured mode the body alone holds the event."""
    headers, body = to_structured(_minimal())
    assert from_http({**headers, "ce-id": "other"}, body) == [_minimal()]


@pytest.mark.parametrize(
    ("content_type", "fragment"),
    [
        ("application/cloudevents+xml", "unsupported event format"),
        ("application/cloudevents+json; charset=latin-1", "UTF-8"),
        ("text/plain", "ce-specversion"),
        (None, "ce-specversion"),
    ],
)
def test_from_http_refuses_what_is_no_cloudevent(
    content_type: str | None, fragment: str
) -> None:
    """Other event formats, charsets, and plain requests are refused."""
    headers = {} if content_type is None else {"content-type": content_type}
    with pytest.raises(CloudEventsFormatError, match=fragment):
        from_http(headers, to_structured(_minimal())[1])


def test_messages_are_accepted_wherever_events_are() -> None:
    """to_structured, to_batch and to_binary convert messages themselves."""
    message = Ship(order_id="o-1")
    expected = to_cloudevent(message)
    assert from_structured(to_structured(message)[1]) == expected
    assert from_batch(to_batch([message, expected])[1]) == [expected, expected]
    assert from_binary(*to_binary(message)) == expected
