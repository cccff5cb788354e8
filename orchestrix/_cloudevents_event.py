"""The `CloudEvent` value and its JSON-format object form; no compatibility promise.

The public names are re-exported by `orchestrix.cloudevents`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeAlias, final

from orchestrix import _cloudevents_rules as rules
from orchestrix.errors import CloudEventsFormatError

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "CONTEXT_ATTRIBUTES",
    "SPECVERSION",
    "CloudEvent",
    "ExtensionValue",
    "JSONValue",
    "from_json_object",
    "to_json_object",
]

#: The only specification version this module reads and writes.
SPECVERSION: Final = "1.0"
#: Context attributes defined by the core specification, in output order.
CONTEXT_ATTRIBUTES: Final = (
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
)
_REQUIRED: Final = ("specversion", "id", "source", "type")
# Member names of the JSON format that are not attributes, and cannot be
# extension names either.
_RESERVED: Final = frozenset({"data", "data_base64"})

#: A JSON value as Python builtins.
JSONValue: TypeAlias = (
    "dict[str, JSONValue] | list[JSONValue] | str | int | float | bool | None"
)
#: The value of an extension attribute: String, Integer or Boolean.
ExtensionValue: TypeAlias = str | int | bool
_APPLICATION_JSON: Final = rules.MediaType("application/json", None)


def _check_json_value(value: object, depth: int = 0) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            rule = f"JSON has no representation for the number {value!r}"
            raise CloudEventsFormatError(rule, attribute="data")
        return
    if depth > 500:  # noqa: PLR2004 -- far deeper than any real document
        rule = "data is nested too deeply"
        raise CloudEventsFormatError(rule, attribute="data")
    if isinstance(value, list):
        for item in value:
            _check_json_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                rule = f"JSON object keys must be str, got {type(key).__name__}"
                raise CloudEventsFormatError(rule, attribute="data")
            _check_json_value(item, depth + 1)
        return
    rule = (
        f"data must be bytes or a JSON value (dict, list, str, int, float, bool), "
        f"got {type(value).__name__}"
    )
    raise CloudEventsFormatError(rule, attribute="data")


def _check_extension(name: object, value: object) -> None:
    if not isinstance(name, str):
        rule = f"extension names must be str, got {type(name).__name__}"
        raise CloudEventsFormatError(rule)
    rules.check_name(name)
    if name in CONTEXT_ATTRIBUTES or name in _RESERVED:
        rule = f"{name!r} is not an extension name: it is reserved by the specification"
        raise CloudEventsFormatError(rule, attribute=name)
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not rules.INT_MIN <= value <= rules.INT_MAX:
            rule = (
                f"an Integer must be within {rules.INT_MIN} and {rules.INT_MAX} "
                f"(32-bit signed), got {value}; send larger numbers as a String"
            )
            raise CloudEventsFormatError(rule, attribute=name)
        return
    if isinstance(value, float):
        rule = (
            f"an Integer is a whole number written without fraction or exponent, "
            f"got {value!r}; there is no floating-point type"
        )
        raise CloudEventsFormatError(rule, attribute=name)
    if isinstance(value, str):
        rules.check_string(value, name)
        return
    rule = (
        f"extension values must be String (str), Integer (int) or Boolean (bool), got "
        f"{type(value).__name__}: send Binary as base64 text and Timestamp as RFC 3339 "
        f"text"
    )
    raise CloudEventsFormatError(rule, attribute=name)


@final
@dataclass(frozen=True, kw_only=True, slots=True)
class CloudEvent:
    """One CloudEvent 1.0: its context attributes, extensions and data.

    Every instance is valid: the constructor checks every rule of the
    specification and raises `CloudEventsFormatError` naming the broken one.
    Values are kept as they travel, so an event parsed and sent on is
    unchanged, extensions included; `time` stays the original RFC 3339 text,
    with its offset and all of its fractional digits.

    `data` is None (no data), bytes (``data_base64`` in JSON), or a JSON value.
    When `datacontenttype` is JSON (``application/json``, ``*/*+json``, or
    unset, which means JSON), any JSON value is allowed, a str being a JSON
    string; for other types, text data is a str. Treat a dict or list in `data`
    as read-only: the event does not copy it.

    Attributes:
        id: Identifies the event; non-empty.
        source: URI-reference of the context the event happened in; non-empty.
        type: Type of the event; non-empty.
        specversion: Always ``"1.0"``.
        datacontenttype: Media type of `data` (RFC 2046), if given.
        dataschema: Absolute URI of the schema `data` adheres to, if given.
        subject: Subject of the event within its source, if given.
        time: When the occurrence happened, as RFC 3339 text, if given.
        extensions: Extension attributes by name (read-only).
        data: The event payload.
    """

    id: str
    source: str
    type: str
    specversion: str = SPECVERSION
    datacontenttype: str | None = None
    dataschema: str | None = None
    subject: str | None = None
    time: str | None = None
    extensions: Mapping[str, ExtensionValue] = field(
        default_factory=lambda: MappingProxyType({})
    )
    data: JSONValue | bytes = None

    def __post_init__(self) -> None:
        if self.specversion != SPECVERSION:
            rule = (
                f"specversion must be {SPECVERSION!r}, got {self.specversion!r}; "
                f"only CloudEvents 1.0 is supported"
            )
            raise CloudEventsFormatError(rule, attribute="specversion")
        rules.check_string(self.id, "id", non_empty=True)
        rules.check_uri_reference(self.source, "source")
        rules.check_string(self.type, "type", non_empty=True)
        media = _APPLICATION_JSON
        if self.datacontenttype is not None:
            rules.check_string(self.datacontenttype, "datacontenttype")
            media = rules.parse_media_type(self.datacontenttype)
        if self.dataschema is not None:
            rules.check_uri(self.dataschema, "dataschema")
        if self.subject is not None:
            rules.check_string(self.subject, "subject", non_empty=True)
        if self.time is not None:
            rules.check_timestamp(self.time, "time")
        extensions: object = self.extensions
        if not isinstance(extensions, Mapping):
            rule = f"extensions must be a mapping, got {type(extensions).__name__}"
            raise CloudEventsFormatError(rule)
        for name, value in extensions.items():
            _check_extension(name, value)
        # A private copy: the caller's mapping may change later.
        object.__setattr__(self, "extensions", MappingProxyType(dict(extensions)))
        data = self.data
        if isinstance(data, bytes | None):
            return
        if not media.is_json and not isinstance(data, str):
            rule = (
                f"data of the non-JSON datacontenttype {self.datacontenttype!r} "
                f"must be text (str) or bytes, got {type(data).__name__}"
            )
            raise CloudEventsFormatError(rule, attribute="data")
        _check_json_value(data)

    @property
    def media_type(self) -> rules.MediaType:
        """The parsed `datacontenttype`; unset means ``application/json``."""
        if self.datacontenttype is None:
            return _APPLICATION_JSON
        return rules.parse_media_type(self.datacontenttype)

    def parsed_time(self) -> datetime | None:
        """Return `time` as an aware datetime, or None when unset.

        Digits beyond microseconds are truncated and a leap second (``:60``)
        becomes ``:59.999999``; `time` itself keeps the exact text.
        """
        return None if self.time is None else rules.parse_time(self.time)

    def attributes(self) -> dict[str, ExtensionValue]:
        """Return every attribute that is set, extensions included, by name."""
        result: dict[str, ExtensionValue] = {}
        for name in CONTEXT_ATTRIBUTES:
            value = getattr(self, name)
            if value is not None:
                result[name] = value
        result.update(self.extensions)
        return result


def to_json_object(event: CloudEvent) -> dict[str, object]:
    """Return *event* as the JSON object of the JSON event format."""
    result: dict[str, object] = {}
    result.update(event.attributes())
    data = event.data
    if isinstance(data, bytes):
        result["data_base64"] = base64.b64encode(data).decode("ascii")
    elif data is not None:
        result["data"] = data
    return result


def _members(
    document: dict[str, object],
) -> tuple[dict[str, Any], dict[str, Any]]:
    # Values are checked by the CloudEvent constructor; names here.
    attributes: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    for name, value in document.items():
        if name in _RESERVED or value is None:
            # JSON null means the attribute is absent.
            continue
        if name in CONTEXT_ATTRIBUTES:
            attributes[name] = value
        else:
            extensions[name] = value
    return attributes, extensions


def from_json_object(document: object) -> CloudEvent:
    """Return the CloudEvent a decoded JSON-format document holds, else raise."""
    if not isinstance(document, dict):
        rule = (
            f"a CloudEvent in the JSON format is a JSON object, got "
            f"{type(document).__name__}"
        )
        raise CloudEventsFormatError(rule)
    specversion = document.get("specversion")
    if specversion is None:
        rule = "the required attribute specversion is missing"
        raise CloudEventsFormatError(rule, attribute="specversion")
    if specversion != SPECVERSION:
        rule = f"specversion must be {SPECVERSION!r}, got {specversion!r}"
        raise CloudEventsFormatError(rule, attribute="specversion")
    attributes, extensions = _members(document)
    for name in _REQUIRED:
        if name not in attributes:
            rule = f"the required attribute {name} is missing"
            raise CloudEventsFormatError(rule, attribute=name)
    data: JSONValue | bytes = document.get("data")
    encoded = document.get("data_base64")
    if encoded is not None:
        if data is not None:
            rule = "data and data_base64 must not both be present"
            raise CloudEventsFormatError(rule, attribute="data_base64")
        data = rules.decode_base64(encoded)
    return CloudEvent(
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        datacontenttype=attributes.get("datacontenttype"),
        dataschema=attributes.get("dataschema"),
        subject=attributes.get("subject"),
        time=attributes.get("time"),
        extensions=extensions,
        data=data,
    )
