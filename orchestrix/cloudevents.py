"""CloudEvents 1.0.2: the JSON event format, JSON batches and the HTTP binding.

Any `Message` converts to a `CloudEvent` and back, and so does any stored event
(`Recorded`). The mapping (ADR 0011):

==========================  =======================================================
orchestrix                  CloudEvent
==========================  =======================================================
``id``, ``source``          ``id``, ``source``
type name                   ``type``
``time``                    ``time`` (RFC 3339, ``Z`` for UTC)
``subject``                 ``subject``
``correlation_id``          extension ``correlationid``
``causation_id``            extension ``causationid``
schema version              extension ``schemaversion``
the class's own fields      ``data``, a JSON object (``application/json``)
`Recorded` stream id        extension ``streamid``
`Recorded` version          extension ``streamversion``
`Recorded` position         extension ``streamposition``
`Recorded` recorded_at      extension ``recordedat`` (RFC 3339)
==========================  =======================================================

The numbers travel as decimal Strings ("2"): a global position can outgrow the
32-bit CloudEvents Integer, and binary mode carries every extension as a
String, so a String survives both modes unchanged. Integers are accepted too.

Parsing is strict (ADR 0012): every rule of the specification is checked and a
broken one raises `CloudEventsFormatError` naming it. A `CloudEvent` whose type
has no class here can still be parsed, inspected and sent on unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeVar, overload

import msgspec

from orchestrix import _cloudevents_rules as rules
from orchestrix._cloudevents_binary import (
    HTTPHeaders,
    decode_json,
    encode_json,
    header_items,
    read_binary,
    write_binary,
)
from orchestrix._cloudevents_event import (
    CloudEvent,
    ExtensionValue,
    JSONValue,
    from_json_object,
    to_json_object,
)
from orchestrix._cloudevents_rules import format_time
from orchestrix._utils import check_stream_id
from orchestrix.codec import EncodedMessage, decode, encode
from orchestrix.errors import (
    CloudEventsFormatError,
    InvalidArgumentError,
    SerializationError,
)
from orchestrix.messages import ENVELOPE_FIELDS, Message
from orchestrix.records import Recorded

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "BATCH_CONTENT_TYPE",
    "STRUCTURED_CONTENT_TYPE",
    "CloudEvent",
    "ExtensionValue",
    "HTTPHeaders",
    "JSONValue",
    "cloudevent_to_recorded",
    "format_time",
    "from_batch",
    "from_binary",
    "from_cloudevent",
    "from_http",
    "from_structured",
    "recorded_to_cloudevent",
    "to_batch",
    "to_binary",
    "to_cloudevent",
    "to_structured",
]

M = TypeVar("M", bound=Message)

#: Content type of one event in structured mode (JSON event format).
STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json; charset=utf-8"
#: Content type of a JSON batch of events.
BATCH_CONTENT_TYPE: Final = "application/cloudevents-batch+json; charset=utf-8"

_CORRELATION: Final = "correlationid"
_CAUSATION: Final = "causationid"
_SCHEMA_VERSION: Final = "schemaversion"
_STREAM_ID: Final = "streamid"
_STREAM_VERSION: Final = "streamversion"
_STREAM_POSITION: Final = "streamposition"
_RECORDED_AT: Final = "recordedat"
_OWN_EXTENSIONS: Final = frozenset(
    {_CORRELATION, _CAUSATION, _SCHEMA_VERSION}
    | {_STREAM_ID, _STREAM_VERSION, _STREAM_POSITION, _RECORDED_AT}
)

_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder()


# --- messages and stored events ------------------------------------------------


def to_cloudevent(
    message: Message, *, extensions: Mapping[str, ExtensionValue] | None = None
) -> CloudEvent:
    """Return *message* as a CloudEvent (see the module docs for the mapping).

    Args:
        message: Any command, event or query.
        extensions: More extension attributes to add, e.g. tracing context.

    Raises:
        SerializationError: If a field cannot be encoded as JSON.
        CloudEventsFormatError: If an envelope value breaks a CloudEvents rule
            (an empty ``subject``, a ``source`` that is no URI-reference, ...)
            or an extension name is taken by the mapping.
    """
    return _record_to_cloudevent(encode(message), extensions or {})


@overload
def from_cloudevent(event: CloudEvent) -> Message: ...
@overload
def from_cloudevent(event: CloudEvent, cls: type[M]) -> M: ...
def from_cloudevent(event: CloudEvent, cls: type[Message] = Message) -> Message:
    """Return the message *event* carries, upcast to its current class.

    The class is looked up by the event's ``type``; older ``schemaversion``
    values run through the registered upcasters (`orchestrix.codec`).
    Extensions other than the mapped ones and ``dataschema`` have no place in
    a message and are dropped: keep the `CloudEvent` to forward them. Without
    ``time``, the message gets the current time.

    Args:
        event: The CloudEvent; its data must be a JSON object (or absent).
        cls: The message class expected; a different one is an error.

    Raises:
        UnknownMessageType: If no class is registered for the event's type.
        SerializationError: If the data does not fit the class, is no JSON
            object, or the message is not an instance of *cls*.
    """
    message = decode(_cloudevent_to_record(event))
    if not isinstance(message, cls):
        msg = (
            f"CloudEvent {event.id!r} of type {event.type!r} decodes to "
            f"{type(message).__qualname__}, not the expected {cls.__qualname__}"
        )
        raise SerializationError(msg)
    return message


def recorded_to_cloudevent(recorded: Recorded) -> CloudEvent:
    """Return a stored event as a CloudEvent, with its place in the store.

    Works from the stored form alone, so no message class is needed. The
    stream id, version, position and commit time travel as the extensions
    ``streamid``, ``streamversion``, ``streamposition`` and ``recordedat``.

    Raises:
        CloudEventsFormatError: If a stored value breaks a CloudEvents rule,
            such as a stream id holding control characters.
    """
    extra: dict[str, ExtensionValue] = {
        _STREAM_ID: recorded.stream_id,
        _STREAM_VERSION: str(recorded.version),
        _STREAM_POSITION: str(recorded.position),
        _RECORDED_AT: format_time(recorded.recorded_at),
    }
    return _record_to_cloudevent(recorded.record, extra, own=True)


def cloudevent_to_recorded(event: CloudEvent) -> Recorded:
    """Return the stored event a CloudEvent from `recorded_to_cloudevent` carries.

    The message is not decoded: the result's ``record`` is the stored form,
    and its ``event`` decodes (and upcasts) on first access.

    Raises:
        CloudEventsFormatError: If ``streamid``, ``streamversion``,
            ``streamposition`` or ``recordedat`` is missing or invalid.
        SerializationError: If the data is no JSON object.
    """
    extensions = event.extensions
    stream_id = _extension(event, _STREAM_ID)
    if not isinstance(stream_id, str):
        rule = "must be a String"
        raise CloudEventsFormatError(rule, attribute=_STREAM_ID)
    try:
        check_stream_id(stream_id)
    except InvalidArgumentError as exc:
        raise CloudEventsFormatError(str(exc), attribute=_STREAM_ID) from exc
    recorded_at = _extension(event, _RECORDED_AT)
    return Recorded(
        stream_id,
        _counter(extensions, _STREAM_VERSION, required=True),
        _counter(extensions, _STREAM_POSITION, required=True),
        rules.parse_time(
            rules.check_timestamp(recorded_at, _RECORDED_AT), _RECORDED_AT
        ),
        _cloudevent_to_record(event),
    )


def _extension(event: CloudEvent, name: str) -> ExtensionValue:
    value = event.extensions.get(name)
    if value is None:
        rule = f"a stored event needs the extension {name}"
        raise CloudEventsFormatError(rule, attribute=name)
    return value


def _counter(
    extensions: Mapping[str, ExtensionValue], name: str, *, required: bool
) -> int:
    """Return a positive whole number carried as an Integer or as decimal text."""
    value = extensions.get(name)
    if value is None and not required:
        return 1
    if isinstance(value, str) and value.isdigit() and value.isascii():
        if value.startswith("0"):
            value = None  # not the canonical form
        else:
            return int(value)
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    rule = (
        f"must be a whole number >= 1, as an Integer or its decimal text without "
        f"leading zeros, got {value!r}"
    )
    raise CloudEventsFormatError(rule, attribute=name)


def _record_to_cloudevent(
    record: EncodedMessage,
    extra: Mapping[str, ExtensionValue],
    *,
    own: bool = False,
) -> CloudEvent:
    payload = record.to_dict()
    extensions: dict[str, ExtensionValue] = {}
    for field, name in (("correlation_id", _CORRELATION), ("causation_id", _CAUSATION)):
        value = payload.get(field)
        if value is not None:
            extensions[name] = value
    extensions[_SCHEMA_VERSION] = str(record.schema_version)
    for name, value in extra.items():
        if name in _OWN_EXTENSIONS and not own:
            rule = f"the extension {name} is set by the message mapping (ADR 0011)"
            raise CloudEventsFormatError(rule, attribute=name)
        extensions[name] = value
    time = payload.get("time")
    return CloudEvent(
        id=record.id,
        source=payload.get("source"),  # type: ignore[arg-type]  # the constructor checks it
        type=record.type,
        datacontenttype="application/json",
        subject=payload.get("subject"),
        time=None if time is None else format_time(rules.parse_time(time)),
        extensions=extensions,
        data={k: v for k, v in payload.items() if k not in ENVELOPE_FIELDS},
    )


def _cloudevent_to_record(event: CloudEvent) -> EncodedMessage:
    data = event.data
    if not event.media_type.is_json:
        msg = (
            f"CloudEvent {event.id!r} has datacontenttype {event.datacontenttype!r}; "
            f"a message needs JSON data (application/json)"
        )
        raise SerializationError(msg)
    if isinstance(data, bytes):
        try:
            data = _decoder.decode(data)
        except msgspec.DecodeError as exc:
            msg = f"CloudEvent {event.id!r}: data_base64 does not hold JSON: {exc}"
            raise SerializationError(msg) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        msg = (
            f"CloudEvent {event.id!r}: a message needs data that is a JSON object "
            f"of its fields, got {type(data).__name__}"
        )
        raise SerializationError(msg)
    extensions = event.extensions
    payload: dict[str, object] = {"id": event.id, "source": event.source}
    if event.time is not None:
        # msgspec reads RFC 3339 with upper-case T and Z, no leap second and
        # rounds digits beyond microseconds: give it the canonical form.
        payload["time"] = format_time(rules.parse_time(event.time))
    payload["subject"] = event.subject
    for field, name in (("correlation_id", _CORRELATION), ("causation_id", _CAUSATION)):
        value = extensions.get(name)
        if value is not None and not isinstance(value, str):
            rule = "must be a String"
            raise CloudEventsFormatError(rule, attribute=name)
        payload[field] = value
    clash = sorted(set(data) & set(ENVELOPE_FIELDS))
    if clash:
        msg = (
            f"CloudEvent {event.id!r}: data holds {', '.join(clash)}, which are "
            f"envelope fields of a message; carry them as attributes instead"
        )
        raise SerializationError(msg)
    payload.update(data)
    version = _counter(extensions, _SCHEMA_VERSION, required=False)
    return EncodedMessage(event.id, event.type, version, _encoder.encode(payload))


def _as_cloudevent(event: CloudEvent | Message) -> CloudEvent:
    return event if isinstance(event, CloudEvent) else to_cloudevent(event)


# --- JSON format and batches ------------------------------------------------------


def to_structured(event: CloudEvent | Message) -> tuple[dict[str, str], bytes]:
    """Return the HTTP headers and body of *event* in structured mode.

    The body is the JSON event format; a message is converted first with
    `to_cloudevent`.

    Raises:
        CloudEventsFormatError: If the data cannot be written as JSON.
    """
    body = encode_json(to_json_object(_as_cloudevent(event)))
    return {"content-type": STRUCTURED_CONTENT_TYPE}, body


def from_structured(body: bytes | str) -> CloudEvent:
    """Return the CloudEvent in a JSON event format document (structured mode).

    Raises:
        CloudEventsFormatError: If *body* is not one valid CloudEvent.
    """
    return from_json_object(decode_json(body, "a structured CloudEvent"))


def to_batch(events: Iterable[CloudEvent | Message]) -> tuple[dict[str, str], bytes]:
    """Return the HTTP headers and body of *events* as one JSON batch.

    Raises:
        CloudEventsFormatError: If an event's data cannot be written as JSON;
            ``index`` names the event.
    """
    documents = []
    for index, event in enumerate(events):
        try:
            documents.append(to_json_object(_as_cloudevent(event)))
        except CloudEventsFormatError as exc:
            raise exc.at_index(index) from exc
    try:
        body = _encoder.encode(documents)
    except (TypeError, ValueError, msgspec.EncodeError):
        for index, document in enumerate(documents):
            try:
                encode_json(document)
            except CloudEventsFormatError as exc:
                raise exc.at_index(index) from exc
        raise  # pragma: no cover -- some single document fails above
    return {"content-type": BATCH_CONTENT_TYPE}, body


def from_batch(body: bytes | str) -> list[CloudEvent]:
    """Return the CloudEvents of a JSON batch (an array, possibly empty).

    Raises:
        CloudEventsFormatError: If *body* is no JSON array or an event in it
            is invalid; ``index`` names the event.
    """
    documents = decode_json(body, "a CloudEvents batch")
    if not isinstance(documents, list):
        rule = f"a batch is a JSON array of CloudEvents, got {type(documents).__name__}"
        raise CloudEventsFormatError(rule)
    events = []
    for index, document in enumerate(documents):
        try:
            events.append(from_json_object(document))
        except CloudEventsFormatError as exc:
            raise exc.at_index(index) from exc
    return events


# --- HTTP binary mode -----------------------------------------------------------


def to_binary(event: CloudEvent | Message) -> tuple[dict[str, str], bytes]:
    """Return the HTTP headers and body of *event* in binary mode.

    Attributes become ``ce-`` headers with percent-encoded values,
    ``datacontenttype`` becomes ``content-type``, and the body is the data:
    JSON text for JSON content types, text in its charset (UTF-8 unless
    declared), or the bytes as they are.

    Raises:
        CloudEventsFormatError: If the data cannot be written in the body:
            bytes without a ``datacontenttype``, or text its charset cannot
            encode.
    """
    return write_binary(_as_cloudevent(event))


def from_binary(headers: HTTPHeaders, body: bytes) -> CloudEvent:
    """Return the CloudEvent of an HTTP message in binary mode.

    Header names are matched case-insensitively and values percent-decoded.
    Extensions arrive as Strings: binary mode does not carry their type.
    An empty body means no data; a body of a JSON content type (or of none)
    is parsed as JSON; UTF-8 or US-ASCII text types give a str; anything else
    stays bytes.

    Raises:
        CloudEventsFormatError: If a rule of the specification or of the HTTP
            binding is broken (``ce-specversion`` missing, a header given
            twice, a body that is not the JSON its content type claims, ...).
    """
    return read_binary(headers, body)


# --- HTTP, any mode ----------------------------------------------------------------


def from_http(headers: HTTPHeaders, body: bytes) -> list[CloudEvent]:
    """Return the CloudEvents of an HTTP message in any content mode.

    The mode follows the content type: ``application/cloudevents+json`` is
    structured mode (one event), ``application/cloudevents-batch+json`` a
    batch (any number), any other is binary mode (one event).

    Raises:
        CloudEventsFormatError: If the message holds no valid CloudEvent,
            uses an event format other than JSON, or a charset other than
            UTF-8 for it.
    """
    content_type = next(
        (
            value
            for name, value in header_items(headers)
            if name.lower() == "content-type"
        ),
        None,
    )
    essence = charset = None
    if content_type is not None:
        essence, charset = rules.parse_media_type(content_type, "content-type")
    if essence is None or not essence.startswith("application/cloudevents"):
        return [from_binary(headers, body)]
    if charset not in (None, "utf-8"):
        rule = f"the JSON event format is UTF-8, but content-type says {charset!r}"
        raise CloudEventsFormatError(rule)
    if essence == "application/cloudevents+json":
        return [from_structured(body)]
    if essence == "application/cloudevents-batch+json":
        return from_batch(body)
    rule = (
        f"unsupported event format {essence!r}: only application/cloudevents+json "
        f"and application/cloudevents-batch+json are read"
    )
    raise CloudEventsFormatError(rule)
