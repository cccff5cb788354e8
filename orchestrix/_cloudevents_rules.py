"""The CloudEvents 1.0.2 type system and HTTP header rules; no compatibility promise.

Each check raises `CloudEventsFormatError` naming the rule and the attribute.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, NamedTuple

from orchestrix.errors import CloudEventsFormatError

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MediaType",
    "check_name",
    "check_string",
    "check_timestamp",
    "check_uri",
    "check_uri_reference",
    "decode_base64",
    "format_time",
    "parse_media_type",
    "parse_time",
    "percent_decode",
    "percent_encode",
]

#: Bounds of the CloudEvents Integer type (32-bit signed).
INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1

_NAME: Final = re.compile(r"[a-z0-9]+")


def check_name(name: str) -> None:
    """Raise unless *name* is a valid attribute name (ASCII a-z and 0-9 only)."""
    if not _NAME.fullmatch(name):
        rule = (
            "attribute names must consist of lower-case ASCII letters (a-z) and "
            "digits (0-9) only"
        )
        raise CloudEventsFormatError(rule, attribute=name)


def _forbidden_string_chars() -> str:
    # Spec "Type System", String: control characters, Unicode noncharacters and
    # unpaired surrogates (a Python str holds a valid pair as one code point).
    ranges = ["\x00-\x1f", "\x7f-\x9f", "\ud800-\udfff", "\ufdd0-\ufdef"]
    ranges += [
        re.escape(chr(plane << 16 | low))
        for plane in range(17)
        for low in (0xFFFE, 0xFFFF)
    ]
    return "[" + "".join(ranges) + "]"


_FORBIDDEN: Final = re.compile(_forbidden_string_chars())


def check_string(value: object, attribute: str, *, non_empty: bool = False) -> str:
    """Return *value* if it is a valid CloudEvents String, else raise."""
    if not isinstance(value, str):
        rule = f"must be a String, got {type(value).__name__}"
        raise CloudEventsFormatError(rule, attribute=attribute)
    if non_empty and not value:
        rule = "must be a non-empty String"
        raise CloudEventsFormatError(rule, attribute=attribute)
    if value.isascii() and value.isprintable():
        return value  # the common case, free of every forbidden character
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        rule = (
            f"a String must not hold control characters, Unicode noncharacters or "
            f"unpaired surrogates; found U+{ord(bad.group()):04X} at offset "
            f"{bad.start()}"
        )
        raise CloudEventsFormatError(rule, attribute=attribute)
    return value


# RFC 3986, Appendix B: split a URI-reference into its five components.
_URI_PARTS: Final = re.compile(
    r"(?:([^:/?#]+):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.DOTALL
)
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_PCHARS: Final = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
_USERINFO: Final = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*")
_REG_NAME: Final = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
_IP_LITERAL: Final = re.compile(
    r"\[[0-9A-Fa-f:.]+\]|\[[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+\]"
)
_PORT: Final = re.compile(r"[0-9]*")


def _authority_problem(authority: str) -> str | None:
    userinfo, at, hostport = authority.rpartition("@")
    if at and not _USERINFO.fullmatch(userinfo):
        return "invalid characters in the userinfo (RFC 3986, 3.2.1)"
    if hostport.startswith("["):
        host, bracket, port = hostport.partition("]")
        if not _IP_LITERAL.fullmatch(host + bracket) or port[:1] not in ("", ":"):
            return "invalid IP literal in the authority (RFC 3986, 3.2.2)"
        port = port[1:]
    else:
        host, _, port = hostport.partition(":")
        if not _REG_NAME.fullmatch(host):
            return "invalid characters in the host (RFC 3986, 3.2.2)"
    if not _PORT.fullmatch(port):
        return "the port must be digits (RFC 3986, 3.2.3)"
    return None


def _uri_problem(value: str, *, absolute: bool) -> str | None:
    parts = _URI_PARTS.fullmatch(value)
    if parts is None:  # pragma: no cover -- the pattern matches every string
        return "not a URI-reference"
    scheme, authority, path, query, fragment = parts.groups()
    if scheme is not None and not _SCHEME.fullmatch(scheme):
        return f"scheme {scheme!r} is not a valid URI scheme (RFC 3986, 3.1)"
    if absolute and scheme is None:
        return "must be an absolute URI with a scheme (RFC 3986, 4.3)"
    problem = None if authority is None else _authority_problem(authority)
    for name, part in (("path", path), ("query", query), ("fragment", fragment)):
        if problem is None and part is not None and not _PCHARS.fullmatch(part):
            problem = (
                f"invalid character or percent-encoding in the {name}: percent-encode "
                f"spaces, non-ASCII and reserved characters (RFC 3986, 2.1)"
            )
    return problem


def check_uri_reference(value: object, attribute: str) -> str:
    """Return *value* if it is a non-empty URI-reference (RFC 3986), else raise."""
    text = check_string(value, attribute, non_empty=True)
    problem = _uri_problem(text, absolute=False)
    if problem is not None:
        raise CloudEventsFormatError(
            f"must be a URI-reference: {problem}", attribute=attribute
        )
    return text


def check_uri(value: object, attribute: str) -> str:
    """Return *value* if it is a non-empty absolute URI (RFC 3986), else raise."""
    text = check_string(value, attribute, non_empty=True)
    problem = _uri_problem(text, absolute=True)
    if problem is not None:
        raise CloudEventsFormatError(f"must be a URI: {problem}", attribute=attribute)
    return text


_TIMESTAMP: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_DAYS: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_FEBRUARY: Final = 2


def _timestamp_fields(text: str, attribute: str) -> tuple[int, ...]:
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        rule = (
            "must be an RFC 3339 date-time such as 2018-04-05T17:31:00Z or "
            "2018-04-05T19:31:00.123+02:00"
        )
        raise CloudEventsFormatError(rule, attribute=attribute)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or ""
    sign, offset_h, offset_m = match.group(9), match.group(10), match.group(11)
    oh = int(offset_h) if offset_h else 0
    om = int(offset_m) if offset_m else 0
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    valid_month = 1 <= month <= len(_DAYS)
    limit = _DAYS[month - 1] - (month == _FEBRUARY and not leap) if valid_month else 0
    if not 1 <= day <= limit:
        rule = f"RFC 3339 date {text[:10]!r} does not exist"
        raise CloudEventsFormatError(rule, attribute=attribute)
    # Second 60 is RFC 3339's leap second.
    if hour > 23 or minute > 59 or second > 60 or oh > 23 or om > 59:  # noqa: PLR2004 -- clock limits
        rule = f"RFC 3339 time in {text!r} is out of range"
        raise CloudEventsFormatError(rule, attribute=attribute)
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    offset = (oh * 60 + om) * (-1 if sign == "-" else 1)
    return year, month, day, hour, minute, second, micro, offset


def check_timestamp(value: object, attribute: str) -> str:
    """Return *value* if it is an RFC 3339 timestamp String, else raise."""
    text = check_string(value, attribute, non_empty=True)
    _timestamp_fields(text, attribute)
    return text


def parse_time(text: str, attribute: str = "time") -> datetime:
    """Return the aware datetime of an RFC 3339 timestamp.

    Digits beyond microseconds are truncated, and a leap second (``:60``)
    becomes ``:59.999999``, since `datetime` can hold neither.
    """
    year, month, day, hour, minute, second, micro, offset = _timestamp_fields(
        text, attribute
    )
    if second == 60:  # noqa: PLR2004 -- the leap second
        second, micro = 59, 999_999
    tz = UTC if offset == 0 else timezone(timedelta(minutes=offset))
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError as exc:
        rule = f"timestamp {text!r} is outside the range Python can represent: {exc}"
        raise CloudEventsFormatError(rule, attribute=attribute) from exc


def format_time(moment: datetime) -> str:
    """Return *moment* (an aware datetime) as RFC 3339 text, ``Z`` for UTC.

    Raises:
        CloudEventsFormatError: If *moment* is naive.
    """
    offset = moment.utcoffset()
    if offset is None:
        rule = "a Timestamp needs a timezone-aware datetime (datetime.now(UTC))"
        raise CloudEventsFormatError(rule, attribute="time")
    if offset % timedelta(minutes=1):
        # RFC 3339 offsets have whole minutes only.
        moment, offset = moment.astimezone(UTC), timedelta(0)
    text = moment.replace(tzinfo=None).isoformat()
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


_TCHARS: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z\-]+"
_VALUE: Final = rf"(?:{_TCHARS}|\"(?:[^\"\\]|\\.)*\")"
_MEDIA_TYPE: Final = re.compile(
    rf"({_TCHARS})/({_TCHARS})((?:[ \t]*;[ \t]*{_TCHARS}={_VALUE})*)[ \t]*"
)
_PARAMETER: Final = re.compile(
    rf"[ \t]*;[ \t]*({_TCHARS})=({_TCHARS}|\"(?:[^\"\\]|\\.)*\")"
)


class MediaType(NamedTuple):
    """A parsed media type: lower-case ``type/subtype`` and its charset, if any."""

    essence: str
    charset: str | None

    @property
    def is_json(self) -> bool:
        """Whether data of this type is JSON (``application/json`` or ``+json``)."""
        return self.essence == "application/json" or self.essence.endswith("+json")

    @property
    def is_text(self) -> bool:
        """Whether data of this type is text: ``text/*``, XML or ``+xml``."""
        return self.essence.startswith("text/") or self.essence.endswith(
            ("/xml", "+xml")
        )


def parse_media_type(value: str, attribute: str = "datacontenttype") -> MediaType:
    """Return the parsed media type *value* (RFC 2046 / RFC 9110), else raise."""
    match = _MEDIA_TYPE.fullmatch(value)
    if match is None:
        rule = (
            f"must be a media type such as 'application/json' or "
            f"'text/plain; charset=utf-8' (RFC 2046), got {value!r}"
        )
        raise CloudEventsFormatError(rule, attribute=attribute)
    charset = None
    for name, raw in _PARAMETER.findall(match.group(3)):
        if name.lower() == "charset":
            charset = raw.strip('"').lower()
    return MediaType(f"{match.group(1)}/{match.group(2)}".lower(), charset)


def percent_encode(value: str) -> str:
    """Return an attribute value encoded for an HTTP header (HTTP binding 3.1.3.2).

    Printable ASCII stays as it is, except space, ``"`` and ``%``; every other
    character becomes the percent-encoding of its UTF-8 bytes.
    """
    if value.isascii() and value.isprintable() and not any(c in value for c in ' "%'):
        return value
    return "".join(
        c
        if "!" <= c <= "~" and c not in '"%'
        else "".join(f"%{b:02X}" for b in c.encode("utf-8"))
        for c in value
    )


_HEADER_VALUE: Final = re.compile(r"[\x20-\x7e\t]*")
_PERCENT: Final = re.compile(rb"%([0-9A-Fa-f]{2})")


def percent_decode(value: str, attribute: str) -> str:
    """Return the attribute value carried by HTTP header *value*, else raise."""
    value = value.strip(" \t")
    if not _HEADER_VALUE.fullmatch(value):
        rule = (
            "HTTP header values must be printable US-ASCII: the sender must "
            "percent-encode other characters as UTF-8 (HTTP binding 3.1.3.2)"
        )
        raise CloudEventsFormatError(rule, attribute=attribute)
    if "%" not in value:
        return value
    raw = value.encode("ascii")
    if raw.count(b"%") != len(_PERCENT.findall(raw)):
        rule = f"malformed percent-encoding in {value!r}: each '%' must start '%XX'"
        raise CloudEventsFormatError(rule, attribute=attribute)
    decoded = _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), raw)
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError as exc:
        rule = f"percent-encoded header value {value!r} is not valid UTF-8"
        raise CloudEventsFormatError(rule, attribute=attribute) from exc


def decode_base64(value: object) -> bytes:
    """Return the bytes of a ``data_base64`` member (RFC 4648 base64), else raise."""
    if not isinstance(value, str):
        rule = f"must be a JSON string of base64 text, got {type(value).__name__}"
        raise CloudEventsFormatError(rule, attribute="data_base64")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        rule = f"is not valid RFC 4648 base64 (alphabet A-Z a-z 0-9 + /, padded): {exc}"
        raise CloudEventsFormatError(rule, attribute="data_base64") from exc
