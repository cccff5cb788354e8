"""orchestrix: async, typed, protocol-based event sourcing.

Everything an application imports comes from this module; `orchestrix.testing`
holds the test helpers and the backend contract suites.
"""

from __future__ import annotations

from orchestrix.aggregate import AggregateRoot as AggregateRoot
from orchestrix.aggregate import applies as applies
from orchestrix.cloudevents import CloudEvent as CloudEvent
from orchestrix.cloudevents import cloudevent_to_recorded as cloudevent_to_recorded
from orchestrix.cloudevents import from_batch as from_batch
from orchestrix.cloudevents import from_binary as from_binary
from orchestrix.cloudevents import from_cloudevent as from_cloudevent
from orchestrix.cloudevents import from_http as from_http
from orchestrix.cloudevents import from_structured as from_structured
from orchestrix.cloudevents import recorded_to_cloudevent as recorded_to_cloudevent
from orchestrix.cloudevents import to_batch as to_batch
from orchestrix.cloudevents import to_binary as to_binary
from orchestrix.cloudevents import to_cloudevent as to_cloudevent
from orchestrix.cloudevents import to_structured as to_structured
from orchestrix.codec import EncodedMessage as EncodedMessage
from orchestrix.codec import register_upcaster as register_upcaster
from orchestrix.codec import upcaster as upcaster
from orchestrix.config import Backend as Backend
from orchestrix.config import open_bus as open_bus
from orchestrix.config import open_checkpoint_store as open_checkpoint_store
from orchestrix.config import open_snapshot_store as open_snapshot_store
from orchestrix.config import open_store as open_store
from orchestrix.errors import AggregateNotFound as AggregateNotFound
from orchestrix.errors import BackendError as BackendError
from orchestrix.errors import BackendTimeoutError as BackendTimeoutError
from orchestrix.errors import BackendUnavailable as BackendUnavailable
from orchestrix.errors import CloudEventsFormatError as CloudEventsFormatError
from orchestrix.errors import ConcurrencyError as ConcurrencyError
from orchestrix.errors import ConfigurationError as ConfigurationError
from orchestrix.errors import DuplicateEventError as DuplicateEventError
from orchestrix.errors import DuplicateTypeNameError as DuplicateTypeNameError
from orchestrix.errors import HandlerError as HandlerError
from orchestrix.errors import HandlerRegistrationError as HandlerRegistrationError
from orchestrix.errors import InvalidArgumentError as InvalidArgumentError
from orchestrix.errors import MissingDependencyError as MissingDependencyError
from orchestrix.errors import NoHandlerError as NoHandlerError
from orchestrix.errors import OrchestrixError as OrchestrixError
from orchestrix.errors import ProjectionError as ProjectionError
from orchestrix.errors import ResourceClosedError as ResourceClosedError
from orchestrix.errors import SchemaVersionError as SchemaVersionError
from orchestrix.errors import SerializationError as SerializationError
from orchestrix.errors import UnknownMessageType as UnknownMessageType
from orchestrix.messages import Command as Command
from orchestrix.messages import Event as Event
from orchestrix.messages import Message as Message
from orchestrix.messages import Query as Query
from orchestrix.messages import new_message_id as new_message_id
from orchestrix.messages import set_default_source as set_default_source
from orchestrix.projections import Projection as Projection
from orchestrix.projections import ProjectionRunner as ProjectionRunner
from orchestrix.projections import ProjectionStatus as ProjectionStatus
from orchestrix.projections import handles as handles
from orchestrix.protocols import ANY as ANY
from orchestrix.protocols import NO_STREAM as NO_STREAM
from orchestrix.protocols import STREAM_EXISTS as STREAM_EXISTS
from orchestrix.protocols import CheckpointStore as CheckpointStore
from orchestrix.protocols import DurableMessageBus as DurableMessageBus
from orchestrix.protocols import EventStore as EventStore
from orchestrix.protocols import ExpectedVersion as ExpectedVersion
from orchestrix.protocols import Handler as Handler
from orchestrix.protocols import LiveEventStore as LiveEventStore
from orchestrix.protocols import MessageBus as MessageBus
from orchestrix.protocols import SnapshotStore as SnapshotStore
from orchestrix.records import AppendResult as AppendResult
from orchestrix.records import DeadLetter as DeadLetter
from orchestrix.records import Recorded as Recorded
from orchestrix.records import Snapshot as Snapshot
from orchestrix.repository import Repository as Repository
from orchestrix.subscriptions import Subscription as Subscription
from orchestrix.subscriptions import subscribe as subscribe

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AggregateNotFound",
    "AggregateRoot",
    "AppendResult",
    "Backend",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailable",
    "CheckpointStore",
    "CloudEvent",
    "CloudEventsFormatError",
    "Command",
    "ConcurrencyError",
    "ConfigurationError",
    "DeadLetter",
    "DuplicateEventError",
    "DuplicateTypeNameError",
    "DurableMessageBus",
    "EncodedMessage",
    "Event",
    "EventStore",
    "ExpectedVersion",
    "Handler",
    "HandlerError",
    "HandlerRegistrationError",
    "InvalidArgumentError",
    "LiveEventStore",
    "Message",
    "MessageBus",
    "MissingDependencyError",
    "NoHandlerError",
    "OrchestrixError",
    "Projection",
    "ProjectionError",
    "ProjectionRunner",
    "ProjectionStatus",
    "Query",
    "Recorded",
    "Repository",
    "ResourceClosedError",
    "SchemaVersionError",
    "SerializationError",
    "Snapshot",
    "SnapshotStore",
    "Subscription",
    "UnknownMessageType",
    "applies",
    "cloudevent_to_recorded",
    "from_batch",
    "from_binary",
    "from_cloudevent",
    "from_http",
    "from_structured",
    "handles",
    "new_message_id",
    "open_bus",
    "open_checkpoint_store",
    "open_snapshot_store",
    "open_store",
    "recorded_to_cloudevent",
    "register_upcaster",
    "set_default_source",
    "subscribe",
    "to_batch",
    "to_binary",
    "to_cloudevent",
    "to_structured",
    "upcaster",
]
