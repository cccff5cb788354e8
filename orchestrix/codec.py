"""Conversion between messages and their stored form, shared by every backend.

A message is stored as an `EncodedMessage`: its id, its type name, the schema
version of its class, and one JSON document (the *payload*) holding the
envelope fields and the data fields under their attribute names. Backends keep
these four values and nothing else, so every backend, the in-memory one
included, stores exactly what the others store.

Nothing is stored that cannot be read back: `encode` refuses, with a
`SerializationError` naming the field, any message whose payload would not
decode to an equal message: a value of another type than the field declares,
a NaN or infinite float, a naive datetime, or a payload nesting more than 256
arrays and objects (which a reader deep in its own stack might fail to
decode). Fields of simple types (``str``, ``int``, ``float``, ``bool``,
``datetime`` in UTC, ``date``, ``UUID``, ``Decimal``, enums, and these or
None) are checked by type alone; a message with other fields is decoded again
and compared. The supported field types are listed on the reference page of
this module.

Decoding looks the type name up in the registry of message classes (filled when
classes are defined) and runs the upcasters registered for older schema
versions. A reader without the class can still read the record as a plain dict
(`EncodedMessage.to_dict`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from typing import (
    Any,
    Final,
    NamedTuple,
    TypeAlias,
    TypeVar,
)

import msgspec

from orchestrix._codec_check import (
    ENCODE_ERRORS,
    NAN_FIX,
    encode_problem,
    encodes,
    plans,
    prepare,
    simple_checks,
    unencodable,
    verify,
    walk,
)
from orchestrix.errors import ConfigurationError, SerializationError, UnknownMessageType
from orchestrix.messages import ENVELOPE_FIELDS, Message, _registry

__all__ = [
    "EncodedMessage",
    "Upcaster",
    "decode",
    "decode_fields",
    "decode_payload",
    "decode_state",
    "encode",
    "encode_state",
    "register_upcaster",
    "upcaster",
]

#: Transforms a payload dict of schema version N into version N + 1.
Upcaster: TypeAlias = Callable[[dict[str, Any]], dict[str, Any]]
F = TypeVar("F", bound=Upcaster)

_encoder: Final = msgspec.json.Encoder()
_dict_decoder: Final = msgspec.json.Decoder(dict[str, Any])
_encode: Final = _encoder.encode
# message class -> the ``decode`` method of a msgspec decoder typed for it
_decoders: dict[type[Message], Callable[[bytes], Any]] = {}
_upcasters: dict[tuple[str, int], Upcaster] = {}


class EncodedMessage(NamedTuple):
    """A message in its stored form; what backends persist.

    Attributes:
        id: The message id (unique in a store).
        type: The message type name.
        schema_version: Schema version of the message class that wrote it.
        payload: UTF-8 JSON object with the envelope and data fields.
    """

    id: str
    type: str
    schema_version: int
    payload: bytes

    def to_dict(self) -> dict[str, Any]:
        """Return the payload as a plain dict, without needing the message class.

        Raises:
            SerializationError: If the payload is not a JSON object.
        """
        return decode_payload(self.payload)

    def data(self) -> dict[str, Any]:
        """Return only the data fields (the payload without the envelope)."""
        return {k: v for k, v in self.to_dict().items() if k not in ENVELOPE_FIELDS}


# Builds an EncodedMessage without the Python-level ``__new__`` of NamedTuple.
_new_tuple: Final = tuple.__new__


def encode(message: Message) -> EncodedMessage:
    """Return the stored form of *message*, which decodes to an equal message.

    Raises:
        SerializationError: If the stored form would not read back as an equal
            message: a field holds a value of another type than it declares
            (a tuple in a ``list`` field, an ``int`` in a ``str`` field), a NaN
            or infinite float, a naive datetime, a value nesting more than 256
            arrays and objects in the payload, or a value JSON cannot
            represent. The message names the class, the id, the field and the
            fix.
    """
    cls = type(message)
    try:
        simple = simple_checks[cls]
    except KeyError:
        simple = prepare(cls, _decoders.get(cls) or _decoder(cls))
    try:
        payload = _encode(message)
    except ENCODE_ERRORS as exc:
        raise unencodable(message, plans[cls], exc) from exc
    if not simple(message):
        verify(message, plans[cls], payload)
    return _new_tuple(
        EncodedMessage,
        (message.id, cls.__message_type__, cls.__message_version__, payload),
    )


def decode(record: EncodedMessage) -> Message:
    """Return the message stored in *record*, upcast to its current class.

    Raises:
        UnknownMessageType: If no class is registered for the record's type.
        SerializationError: If the payload does not fit the class, the stored
            schema version is newer than the class's, or an upcaster is missing.
    """
    # Reads from the stores decode through Recorded.event's own fast path,
    # so one extra call here costs nothing that matters.
    return decode_fields(*record)


def decode_fields(
    message_id: str, type_name: str, schema_version: int, payload: bytes
) -> Message:
    """Return the message stored as these `EncodedMessage` fields.

    The same as ``decode(EncodedMessage(message_id, type_name, schema_version,
    payload))`` without building the record first, for readers that hold the
    fields one by one (a database row, for instance).

    Raises:
        UnknownMessageType: If no class is registered for *type_name*.
        SerializationError: As `decode`, and if the payload is nested deeper
            than the recursion limit.
    """
    cls = _registry.get(type_name)
    if cls is None:
        raise UnknownMessageType(type_name)
    decoder: Callable[[bytes], Message] = _decoders.get(cls) or _decoder(cls)
    if schema_version != cls.__message_version__:
        payload = _upcast(message_id, type_name, schema_version, payload, cls)
    try:
        return decoder(payload)
    except msgspec.DecodeError as exc:
        raise _misfit(message_id, type_name, schema_version, cls, exc) from exc
    except RecursionError as exc:
        msg = (
            f"stored {type_name!r} message {message_id!r} is nested deeper than "
            f"the recursion limit ({sys.getrecursionlimit()}) and cannot be decoded"
        )
        raise SerializationError(msg) from exc


def _decoder(cls: type[Message]) -> Callable[[bytes], Message]:
    try:
        decoder: Callable[[bytes], Message] = msgspec.json.Decoder(cls).decode
    except (NameError, TypeError) as exc:
        msg = (
            f"message class {cls.__qualname__} cannot be decoded: {exc}; give its "
            f"fields types the codec supports, resolvable from its module"
        )
        raise SerializationError(msg) from exc
    _decoders[cls] = decoder
    return decoder


def _misfit(
    message_id: str,
    type_name: str,
    schema_version: int,
    cls: type[Message],
    exc: msgspec.DecodeError,
) -> SerializationError:
    return SerializationError(
        f"stored {type_name!r} message {message_id!r} (schema version "
        f"{schema_version}) does not fit class {cls.__qualname__}: {exc}; "
        f"register an upcaster or fix the class"
    )


def _upcast(
    message_id: str,
    type_name: str,
    stored: int,
    payload: bytes,
    cls: type[Message],
) -> bytes:
    current = cls.__message_version__
    if stored > current:
        msg = (
            f"stored {type_name!r} message {message_id!r} has schema version "
            f"{stored}, newer than this code's version {current}: deploy the newer "
            f"message class before reading it"
        )
        raise SerializationError(msg)
    data = decode_payload(payload)
    for version in range(stored, current):
        step = _upcasters.get((type_name, version))
        if step is None:
            msg = (
                f"no upcaster for {type_name!r} from schema version {version} to "
                f"{version + 1}: register one with @upcaster({type_name!r}, "
                f"from_version={version})"
            )
            raise SerializationError(msg)
        result: object = step(data)  # an untyped upcaster may return anything
        if not isinstance(result, dict):
            msg = (
                f"upcaster {step.__qualname__} for {type_name!r} from schema version "
                f"{version} returned a {type(result).__qualname__}, not the payload "
                f"dict of version {version + 1}"
            )
            raise SerializationError(msg)
        data = result
    try:
        return _encode(data)
    except ENCODE_ERRORS as exc:
        problem, _ = encode_problem(exc)
        msg = (
            f"the upcasters of {type_name!r} from schema version {stored} made a "
            f"payload JSON cannot hold for message {message_id!r}: {problem}; "
            f"return plain JSON values (str, int, float, bool, None, list, dict)"
        )
        raise SerializationError(msg) from exc


def decode_payload(payload: bytes) -> dict[str, Any]:
    """Return a stored payload as a plain dict.

    Raises:
        SerializationError: If *payload* is not a JSON object, or is nested
            deeper than the recursion limit.
    """
    try:
        return _dict_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        msg = f"stored payload is not a JSON object: {exc}"
        raise SerializationError(msg) from exc
    except RecursionError as exc:
        msg = (
            f"stored payload is nested deeper than the recursion limit "
            f"({sys.getrecursionlimit()}) and cannot be decoded"
        )
        raise SerializationError(msg) from exc


def register_upcaster(type_name: str, from_version: int, function: Upcaster) -> None:
    """Register *function* to turn payloads of *type_name* from one version to the next.

    The function receives the payload dict (envelope and data fields) of schema
    version *from_version* and returns the payload of version ``from_version + 1``.
    Chains run in order, so version 1 reaches version 3 through two upcasters.

    Raises:
        ConfigurationError: If an upcaster for that step is already registered.
    """
    key = (type_name, from_version)
    if (
        isinstance(from_version, bool)
        or not isinstance(from_version, int)
        or from_version < 1
    ):
        msg = f"from_version must be an int >= 1, got {from_version!r}"
        raise ConfigurationError(msg)
    existing = _upcasters.get(key)
    if existing is not None and existing is not function:
        msg = (
            f"an upcaster for {type_name!r} from version {from_version} is already "
            f"registered ({existing.__qualname__}); each step has exactly one"
        )
        raise ConfigurationError(msg)
    _upcasters[key] = function


def upcaster(type_name: str, *, from_version: int) -> Callable[[F], F]:
    """Register the decorated function as an upcaster (see `register_upcaster`)."""

    def decorate(function: F) -> F:
        register_upcaster(type_name, from_version, function)
        return function

    return decorate


def encode_state(state: Mapping[str, Any]) -> bytes:
    """Return aggregate snapshot *state* as JSON bytes.

    Raises:
        SerializationError: If a value cannot be represented in JSON: a NaN or
            infinite float, a value nested deeper than the recursion limit, or
            a type JSON cannot hold. The message names the key.
    """
    try:
        payload = _encode(state)
    except ENCODE_ERRORS as exc:
        where = ""
        if isinstance(state, Mapping):
            where = next(
                (f"state[{k!r}]: " for k, v in state.items() if not encodes(v)), ""
            )
        msg = "cannot encode snapshot state: {}{}; {}".format(
            where, *encode_problem(exc)
        )
        raise SerializationError(msg) from exc
    # NaN and Infinity are written as null, so a state without null has none.
    if b"null" in payload:
        for path, value in walk(msgspec.to_builtins(state), "state"):
            if isinstance(value, float) and not math.isfinite(value):
                msg = (
                    f"cannot encode snapshot state: {path}: NaN/Infinity cannot be "
                    f"stored in JSON (got {value!r}); {NAN_FIX}"
                )
                raise SerializationError(msg)
    return payload


def decode_state(state: bytes) -> dict[str, Any]:
    """Return snapshot state bytes as a plain dict.

    Raises:
        SerializationError: If *state* is not a JSON object, or is nested
            deeper than the recursion limit.
    """
    return decode_payload(state)
