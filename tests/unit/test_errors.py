"""The error hierarchy: builtin bases, attributes and actionable messages."""

from __future__ import annotations

import pickle

import pytest

from orchestrix import errors
from orchestrix.errors import (
    AggregateNotFound,
    BackendTimeoutError,
    BackendUnavailable,
    CloudEventsFormatError,
    ConcurrencyError,
    DuplicateEventError,
    HandlerError,
    MissingDependencyError,
    NoHandlerError,
    OrchestrixError,
    UnknownMessageType,
)


def test_every_error_derives_from_the_root() -> None:
    """Users can catch everything orchestrix raises with one except clause."""
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, OrchestrixError), name


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (AggregateNotFound, LookupError),
        (NoHandlerError, LookupError),
        (UnknownMessageType, ValueError),
        (CloudEventsFormatError, ValueError),
        (BackendUnavailable, ConnectionError),
        (BackendTimeoutError, TimeoutError),
        (MissingDependencyError, ImportError),
        (HandlerError, ExceptionGroup),
    ],
)
def test_builtin_bases(cls: type, builtin: type) -> None:
    """Errors also derive from the builtin a caller would naturally catch."""
    assert issubclass(cls, builtin)


def test_concurrency_error_names_the_values() -> None:
    """ConcurrencyError carries and names the stream and both versions."""
    error = ConcurrencyError("acc-1", 3, 5)
    assert (error.stream_id, error.expected, error.actual) == ("acc-1", 3, 5)
    assert "'acc-1'" in str(error)
    assert "version 3" in str(error)
    assert "version 5" in str(error)
    assert "no stream" in str(ConcurrencyError("s", 0, 1))
    assert "an existing stream" in str(ConcurrencyError("s", -1, 0))


@pytest.mark.parametrize(
    "error",
    [
        ConcurrencyError("s", 1, 2),
        DuplicateEventError("e", "s"),
        AggregateNotFound("Account", "a"),
        UnknownMessageType("x.y"),
        MissingDependencyError("asyncpg", "postgres"),
        CloudEventsFormatError("bad", attribute="id", index=2),
    ],
)
def test_errors_survive_pickling(error: OrchestrixError) -> None:
    """Errors cross process boundaries (multiprocessing, task queues) intact."""
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 -- our own bytes
    assert type(again) is type(error)
    assert str(again).split(":")[0] == str(error).split(":")[0]


def test_missing_dependency_names_the_extra() -> None:
    """The message tells the user which extra to install."""
    error = MissingDependencyError("aiosqlite", "sqlite")
    assert "pip install 'orchestrix[sqlite]'" in str(error)
    assert error.name == "aiosqlite"


def test_cloudevents_error_names_rule_attribute_and_item() -> None:
    """Batch errors say which item and which attribute broke which rule."""
    error = CloudEventsFormatError("must be a string", attribute="id").at_index(3)
    assert (error.rule, error.attribute, error.index) == ("must be a string", "id", 3)
    assert (
        str(error)
        == "invalid CloudEvent: batch item 3: attribute 'id': must be a string"
    )


def test_handler_error_splits_into_handler_errors() -> None:
    """HandlerError is an ExceptionGroup that keeps its type and message on split."""
    group = HandlerError("2 handlers failed", [ValueError("a"), KeyError("b")])
    values, rest = group.split(ValueError)
    assert isinstance(values, HandlerError)
    assert isinstance(rest, HandlerError)
    assert [type(e) for e in values.exceptions] == [ValueError]
    assert group.dispatched is None
