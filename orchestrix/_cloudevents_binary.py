"""HTTP binary content mode and JSON helpers; no compatibility promise.

The public names are `orchestrix.cloudevents.to_binary` and `from_binary`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, TypeAlias

import msgspec

from orchestrix import _cloudevents_rules as rules
from orchestrix._cloudevents_event import CloudEvent, ExtensionValue, JSONValue
from orchestrix.errors import CloudEventsFormatError

__all__ = [
    "HTTPHeaders",
    "decode_json",
    "encode_json",
    "header_items",
    "read_binary",
    "write_binary",
]

#: Received HTTP headers: a mapping, or (name, value) pairs as ASGI gives them.
HTTPHeaders: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]

_HEADER_ATTRIBUTES: Final = ("specversion", "id", "source", "type")
_HEADER_OPTIONAL: Final = ("dataschema", "subject", "time")
_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder()


def encode_json(document: object) -> bytes:
    try:
        return _encoder.encode(document)
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        # ValueError: msgspec raises UnicodeEncodeError for lone surrogates.
        rule = f"data cannot be written as JSON: {exc}"
        raise CloudEventsFormatError(rule, attribute="data") from exc


def decode_json(body: bytes | str, what: str) -> object:
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        rule = f"{what} must be UTF-8 JSON text: {exc}"
        raise CloudEventsFormatError(rule) from exc


def _canonical(value: ExtensionValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Return the headers and body of *event* in binary mode."""
    headers = {
        f"ce-{name}": rules.percent_encode(getattr(event, name))
        for name in _HEADER_ATTRIBUTES
    }
    for name in _HEADER_OPTIONAL:
        value = getattr(event, name)
        if value is not None:
            headers[f"ce-{name}"] = rules.percent_encode(value)
    for name, value in event.extensions.items():
        headers[f"ce-{name}"] = rules.percent_encode(_canonical(value))
    if event.datacontenttype is not None:
        headers["content-type"] = event.datacontenttype
    return headers, _body(event)


def _body(event: CloudEvent) -> bytes:
    data = event.data
    media = event.media_type
    if data is None:
        return b""
    if isinstance(data, bytes):
        if event.datacontenttype is None:
            rule = (
                "binary data needs a datacontenttype in binary mode, since an HTTP "
                "body without content-type is read as JSON"
            )
            raise CloudEventsFormatError(rule, attribute="datacontenttype")
        return data
    if media.is_json:
        return encode_json(data)
    if isinstance(data, str):  # pragma: no branch -- the constructor ensures it
        try:
            return data.encode(media.charset or "utf-8")
        except (LookupError, UnicodeEncodeError) as exc:
            rule = f"text data cannot be encoded in {media.charset!r}: {exc}"
            raise CloudEventsFormatError(rule, attribute="data") from exc
    msg = "unreachable: non-JSON data is str or bytes"  # pragma: no cover
    raise AssertionError(msg)  # pragma: no cover


def header_items(headers: HTTPHeaders) -> Iterable[tuple[str, str]]:
    """Return received headers as (name, value) pairs."""
    return headers.items() if isinstance(headers, Mapping) else headers


def read_binary(headers: HTTPHeaders, body: bytes) -> CloudEvent:
    """Return the CloudEvent of a binary-mode HTTP message."""
    values: dict[str, str] = {}
    content_type: str | None = None
    for raw_name, raw_value in header_items(headers):
        lowered = raw_name.lower()
        if lowered == "content-type":
            if content_type is not None:
                rule = "the content-type header is given twice"
                raise CloudEventsFormatError(rule, attribute="datacontenttype")
            content_type = raw_value.strip(" \t")
            continue
        if not lowered.startswith("ce-"):
            continue
        name = lowered[3:]
        rules.check_name(name)
        if name == "datacontenttype":
            rule = "in binary mode datacontenttype travels as the content-type header"
            raise CloudEventsFormatError(rule, attribute=name)
        if name in values:
            raise CloudEventsFormatError(
                f"the header ce-{name} is given twice", attribute=name
            )
        values[name] = rules.percent_decode(raw_value, name)
    if "specversion" not in values:
        rule = "binary mode needs the ce-specversion header"
        raise CloudEventsFormatError(rule, attribute="specversion")
    for name in _HEADER_ATTRIBUTES:
        if name not in values:
            raise CloudEventsFormatError(
                f"the required attribute {name} is missing", attribute=name
            )
    known = {
        name: values.pop(name)
        for name in (*_HEADER_ATTRIBUTES, *_HEADER_OPTIONAL)
        if name in values
    }
    media = rules.parse_media_type(content_type) if content_type is not None else None
    return CloudEvent(
        specversion=known["specversion"],
        id=known["id"],
        source=known["source"],
        type=known["type"],
        datacontenttype=content_type,
        dataschema=known.get("dataschema"),
        subject=known.get("subject"),
        time=known.get("time"),
        extensions=values,
        data=_read_body(body, media),
    )


def _read_body(body: bytes, media: rules.MediaType | None) -> JSONValue | bytes:
    if not body:
        return None
    if media is None or media.is_json:
        what = f"a body of content type {media.essence if media else '(none, so JSON)'}"
        return decode_json(body, what)  # type: ignore[return-value]  # a JSON value
    if media.is_text and media.charset in (None, "utf-8", "us-ascii"):
        try:
            return body.decode(media.charset or "utf-8")
        except UnicodeDecodeError:
            return body
    return body
