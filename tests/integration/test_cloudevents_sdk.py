"""Interoperability of `orchestrix.cloudevents` with the official Python SDK.

The ``cloudevents`` package (2.x) holds two APIs: ``cloudevents.v1`` (the
long-standing ``http`` module) and ``cloudevents.core`` (the new bindings).
What we emit, both parse to the same attributes and data; what they emit, we
parse; in structured and in binary mode.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from cloudevents.core.bindings import http as core_http
from cloudevents.core.v1.event import CloudEvent as CoreEvent
from cloudevents.v1.conversion import to_binary as v1_to_binary
from cloudevents.v1.conversion import to_structured as v1_to_structured
from cloudevents.v1.http import CloudEvent as V1Event
from cloudevents.v1.http import from_http as v1_from_http
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrix import Event
from orchestrix.cloudevents import (
    CloudEvent,
    from_cloudevent,
    from_http,
    to_binary,
    to_cloudevent,
    to_structured,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Invoiced(Event, type="test.cloudevents-sdk.invoiced", version=3):
    invoice_id: uuid.UUID
    amount: Decimal
    lines: list[str]


def _message() -> Invoiced:
    return Invoiced(
        invoice_id=uuid.uuid4(),
        amount=Decimal("99.95"),
        lines=["a", "b"],
        subject="invoices/7",
        correlation_id="c-1",
        causation_id="k-1",
    )


RICH = CloudEvent(
    id="id-1",
    source="https://example.com/billing",
    type="com.example.invoiced",
    datacontenttype="application/json",
    dataschema="https://example.com/schema/invoiced.json",
    subject="invoices/7",
    time="2026-01-02T03:04:05.123456+02:00",
    extensions={"region": "eu", "priority": 5, "urgent": True},
    data={"amount": "99.95", "lines": ["a", "b"], "nested": {"x": None}},
)

# The SDKs stamp a time on events without one, so every event here has one.
_T = "2026-01-02T03:04:05Z"
TEXTS = [
    CloudEvent(
        id="t", source="/s", type="x", time=_T, datacontenttype="text/plain", data="hi"
    ),
    CloudEvent(
        id="x",
        source="/s",
        type="x",
        time=_T,
        datacontenttype="application/xml",
        data="<a>\u00e9</a>",
    ),
    CloudEvent(
        id="b",
        source="/s",
        type="x",
        time=_T,
        datacontenttype="application/octet-stream",
        data=b"\x00\x01\xff",
    ),
]


def _expected_attributes(event: CloudEvent, *, strings: bool) -> dict[str, Any]:
    attributes: dict[str, Any] = event.attributes()
    if strings:
        attributes = {
            k: (str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in attributes.items()
        }
    return attributes


def _core_attributes(event: Any) -> dict[str, Any]:
    attributes = dict(event.get_attributes())
    time = attributes.pop("time", None)
    if time is not None:
        attributes["time"] = time
    return attributes


def _http_headers(headers: dict[str, Any]) -> dict[str, str]:
    # An HTTP transport sends text: the v1 SDK leaves int extension values as int.
    return {k: str(v) for k, v in headers.items()}


# --- we emit, the SDK parses ----------------------------------------------------------


@pytest.mark.parametrize("event", [RICH, *TEXTS], ids=["rich", "text", "xml", "bytes"])
def test_v1_sdk_parses_our_structured_mode(event: CloudEvent) -> None:
    """cloudevents.v1 reads every attribute, typed extension and data we write."""
    parsed = v1_from_http(*to_structured(event))
    assert parsed.get_attributes() == _expected_attributes(event, strings=False)
    assert parsed.get_data() == event.data


def test_v1_sdk_parses_our_binary_mode() -> None:
    """cloudevents.v1 reads binary mode; extensions arrive as their text."""
    parsed = v1_from_http(*to_binary(RICH))
    assert parsed.get_attributes() == _expected_attributes(RICH, strings=True)
    assert parsed.get_data() == RICH.data


@pytest.mark.parametrize("event", [RICH, *TEXTS], ids=["rich", "text", "xml", "bytes"])
def test_core_sdk_parses_our_structured_mode(event: CloudEvent) -> None:
    """cloudevents.core reads what we write; it turns time into a datetime."""
    headers, body = to_structured(event)
    parsed = core_http.from_http_event(core_http.HTTPMessage(headers, body))
    expected = _expected_attributes(event, strings=False)
    if event.time is not None:
        expected["time"] = event.parsed_time()
    assert _core_attributes(parsed) == expected
    assert parsed.get_data() == event.data


@pytest.mark.parametrize(
    "event",
    [
        RICH,
        *TEXTS,
        CloudEvent(
            id="caf\u00e9 \U0001f30e",
            source="/s",
            type="x",
            time=_T,
            subject='100% "quoted" caf\u00e9',
            extensions={"note": "a b\u00a0c"},
        ),
    ],
    ids=["rich", "text", "xml", "bytes", "percent"],
)
def test_core_sdk_parses_our_binary_mode(event: CloudEvent) -> None:
    """cloudevents.core percent-decodes our headers back to the same values."""
    headers, body = to_binary(event)
    parsed = core_http.from_http_event(core_http.HTTPMessage(headers, body))
    expected = _expected_attributes(event, strings=True)
    if event.time is not None:
        expected["time"] = event.parsed_time()
    assert _core_attributes(parsed) == expected
    assert parsed.get_data() == (event.data or None)


@pytest.mark.parametrize("writer", [to_structured, to_binary])
def test_sdks_parse_our_messages(writer: Any) -> None:
    """A message with UUID, Decimal and list fields reaches both SDKs intact."""
    message = _message()
    headers, body = writer(message)
    v1 = v1_from_http(headers, body)
    core = core_http.from_http_event(core_http.HTTPMessage(headers, body))
    expected_data = {
        "invoice_id": str(message.invoice_id),
        "amount": "99.95",
        "lines": ["a", "b"],
    }
    for parsed in (v1, core):
        assert parsed.get_data() == expected_data
    assert v1["type"] == "test.cloudevents-sdk.invoiced"
    assert v1["correlationid"] == "c-1"
    assert v1["causationid"] == "k-1"
    assert v1["schemaversion"] == "3"
    assert core.get_extension("schemaversion") == "3"
    assert core.get_time() == message.time


# --- the SDK emits, we parse ----------------------------------------------------------


def _v1_event(data: Any, **attributes: Any) -> Any:
    base: dict[str, Any] = {
        "type": "com.example.t",
        "source": "https://example.com/src",
        "subject": "sub",
        "region": "eu",
        "priority": 5,
    }
    return V1Event({**base, **attributes}, data)


@pytest.mark.parametrize(
    ("data", "attributes"),
    [
        ({"a": [1, 2.5, None, True]}, {}),
        ({"a": 1}, {"datacontenttype": "application/json"}),
        ("plain text", {"datacontenttype": "text/plain"}),
        (b"\x00\xff", {"datacontenttype": "application/octet-stream"}),
        (None, {}),
    ],
    ids=["json", "json-typed", "text", "bytes", "none"],
)
def test_we_parse_v1_sdk_structured_mode(data: Any, attributes: dict[str, Any]) -> None:
    """Structured events from cloudevents.v1 parse to the same values."""
    sdk_event = _v1_event(data, **attributes)
    [event] = from_http(*v1_to_structured(sdk_event))
    assert event.attributes() == sdk_event.get_attributes()
    assert event.data == data
    assert event.extensions == {"region": "eu", "priority": 5}


@pytest.mark.parametrize(
    ("data", "attributes"),
    [
        ({"a": [1, 2.5, None, True]}, {}),
        ({"a": 1}, {"datacontenttype": "application/json"}),
        (b"\x00\xff", {"datacontenttype": "application/octet-stream"}),
    ],
    ids=["json", "json-typed", "bytes"],
)
def test_we_parse_v1_sdk_binary_mode(data: Any, attributes: dict[str, Any]) -> None:
    """Binary events from cloudevents.v1 parse to the same values."""
    sdk_event = _v1_event(data, **attributes)
    headers, body = v1_to_binary(sdk_event)
    [event] = from_http(_http_headers(headers), body)
    assert event.attributes() == {
        k: str(v) for k, v in sdk_event.get_attributes().items()
    }
    assert event.data == data


def _core_event(data: Any, **attributes: Any) -> Any:
    base: dict[str, Any] = {
        "type": "com.example.t",
        "source": "/src",
        "subject": "caf\u00e9 100%",
        "time": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "region": "eu \u00fc",
    }
    return CoreEvent({**base, **attributes}, data)


@pytest.mark.parametrize(
    ("data", "attributes"),
    [
        ({"a": [1, 2.5, None, True]}, {}),
        ({"a": 1}, {"datacontenttype": "application/vnd.example+json"}),
        ("plain text \u00e9", {"datacontenttype": "text/plain; charset=utf-8"}),
        (b"\x00\xff", {"datacontenttype": "application/octet-stream"}),
    ],
    ids=["json", "json-suffix", "text", "bytes"],
)
@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_we_parse_core_sdk_output(
    data: Any, attributes: dict[str, Any], mode: str
) -> None:
    """Events from cloudevents.core parse to the same values in both modes."""
    sdk_event = _core_event(data, **attributes)
    writer = (
        core_http.to_structured_event
        if mode == "structured"
        else core_http.to_binary_event
    )
    message = writer(sdk_event)
    [event] = from_http(message.headers, message.body)
    expected = dict(sdk_event.get_attributes())
    assert event.parsed_time() == expected.pop("time")
    assert {k: v for k, v in event.attributes().items() if k != "time"} == expected
    assert event.data == data


@pytest.mark.parametrize("writer", [to_structured, to_binary])
def test_messages_survive_a_trip_through_both_sdks(writer: Any) -> None:
    """Our message, re-emitted by each SDK, converts back to an equal message."""
    message = _message()
    headers, body = writer(message)
    v1 = v1_from_http(headers, body)
    [via_v1] = from_http(*v1_to_structured(v1))
    assert from_cloudevent(via_v1) == message
    core = core_http.from_http_event(core_http.HTTPMessage(headers, body))
    again = core_http.to_binary_event(core)
    [via_core] = from_http(again.headers, again.body)
    assert from_cloudevent(via_core) == message
    assert via_core == to_cloudevent(message)


_STRINGS = st.text(
    # Assigned characters only: Cc, Cs and the noncharacters (Cn) are no String.
    st.characters(whitelist_categories=("L", "M", "N", "P", "S", "Zs")),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(subject=_STRINGS.filter(bool), extension=_STRINGS)
def test_any_valid_string_survives_binary_mode_with_the_core_sdk(
    subject: str, extension: str
) -> None:
    """Percent-encoding agrees with cloudevents.core for arbitrary Unicode."""
    ours = CloudEvent(
        id="1", source="/s", type="t", subject=subject, extensions={"x": extension}
    )
    headers, body = to_binary(ours)
    parsed = core_http.from_binary_event(core_http.HTTPMessage(headers, body))
    assert parsed.get_subject() == subject
    assert parsed.get_extension("x") == extension
    theirs = core_http.to_binary_event(parsed)
    [back] = from_http(theirs.headers, theirs.body)
    assert back.subject == subject
    assert back.extensions["x"] == extension
