"""The PostgreSQL schema orchestrix creates, and its versioned migrations.

Every migration runs inside one transaction holding a transaction-level
advisory lock keyed by the schema name, so processes starting at once apply
each step exactly once (see ADR 0018). SQL text is built only from constants
and the validated, quoted schema name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from orchestrix.backends.postgres._connection import (
    create_pool,
    quote_ident,
    raise_translated,
)
from orchestrix.errors import OrchestrixError, SchemaVersionError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    from orchestrix.backends.postgres._connection import PostgresOptions

__all__ = ["LATEST_VERSION", "MIGRATIONS", "migrate", "open_migrated_pool"]

# First key of the advisory lock taken while migrating; the second is the
# schema name's hash, so different schemas migrate independently.
_LOCK_CLASS: Final = 0x0C5E

_STORE: Final = r"""
CREATE TABLE {s}.streams (
    stream_id text PRIMARY KEY,
    version bigint NOT NULL
);

CREATE TABLE {s}.event_counter (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_position bigint NOT NULL
) WITH (fillfactor = 10);
INSERT INTO {s}.event_counter (id, last_position) VALUES (true, 0);

CREATE TABLE {s}.events (
    position bigint PRIMARY KEY,
    stream_id text NOT NULL,
    version bigint NOT NULL,
    event_id text NOT NULL,
    type text NOT NULL,
    schema_version integer NOT NULL,
    payload bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

CREATE TABLE {s}.snapshots (
    stream_id text PRIMARY KEY,
    version bigint NOT NULL,
    aggregate_type text NOT NULL,
    schema_version integer NOT NULL,
    state bytea NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);

-- One round trip per append: lock and check the stream row, then take the
-- global counter (held until commit: the serialisation point of ADR 0017)
-- and insert the batch. out_code 0: stored; 1: version conflict (then
-- out_version holds the actual one). A reused event id raises SQLSTATE OX001.
CREATE FUNCTION {s}.append_events(
    p_stream text,
    p_expected bigint,
    p_ids text[],
    p_types text[],
    p_schema_versions integer[],
    p_payloads bytea[],
    OUT out_code integer,
    OUT out_version bigint,
    OUT out_last bigint
) LANGUAGE plpgsql AS $$
DECLARE
    n integer := cardinality(p_ids);
    base_version bigint;
    stored integer;
BEGIN
    LOOP
        UPDATE {s}.streams AS st SET version = st.version + n
        WHERE st.stream_id = p_stream
          AND (p_expected IS NULL
               OR (p_expected = -1 AND st.version > 0)
               OR st.version = p_expected)
        RETURNING st.version - n INTO base_version;
        EXIT WHEN FOUND;
        SELECT st.version INTO base_version FROM {s}.streams AS st
        WHERE st.stream_id = p_stream;
        IF FOUND THEN
            -- Created or moved since the UPDATE looked: check again.
            CONTINUE WHEN p_expected IS NULL
                OR (p_expected = -1 AND base_version > 0)
                OR base_version = p_expected;
            out_code := 1;
            out_version := base_version;
            RETURN;
        END IF;
        IF p_expected IS NOT NULL AND p_expected <> 0 THEN
            out_code := 1;
            out_version := 0;
            RETURN;
        END IF;
        INSERT INTO {s}.streams (stream_id, version) VALUES (p_stream, n)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            base_version := 0;
            EXIT;
        END IF;
    END LOOP;
    UPDATE {s}.event_counter SET last_position = last_position + n
    RETURNING event_counter.last_position INTO out_last;
    INSERT INTO {s}.events
        (position, stream_id, version, event_id, type, schema_version, payload)
    SELECT out_last - n + x.o, p_stream, base_version + x.o, x.i, x.t, x.v, x.p
    FROM unnest(p_ids, p_types, p_schema_versions, p_payloads)
        WITH ORDINALITY AS x (i, t, v, p, o)
    ON CONFLICT (event_id) DO NOTHING;
    GET DIAGNOSTICS stored = ROW_COUNT;
    IF stored <> n THEN
        RAISE EXCEPTION 'an appended event id is already stored'
            USING ERRCODE = 'OX001';
    END IF;
    out_code := 0;
    out_version := base_version + n;
END
$$;
"""

_BUS: Final = r"""
CREATE TABLE {s}.bus_messages (
    message_id text PRIMARY KEY,
    type text NOT NULL,
    schema_version integer NOT NULL,
    payload bytea NOT NULL,
    type_names text[] NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {s}.bus_subscriptions (
    group_name text NOT NULL,
    type_name text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (type_name, group_name)
);

CREATE TABLE {s}.bus_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text NOT NULL REFERENCES {s}.bus_messages ON DELETE CASCADE,
    group_name text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    visible_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    CONSTRAINT bus_deliveries_message_group_key UNIQUE (message_id, group_name)
);
CREATE INDEX bus_deliveries_ready ON {s}.bus_deliveries (group_name, visible_at, id);

CREATE TABLE {s}.bus_dead_letters (
    message_id text NOT NULL REFERENCES {s}.bus_messages ON DELETE CASCADE,
    group_name text NOT NULL,
    attempts integer NOT NULL,
    error text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, group_name)
);
CREATE INDEX bus_dead_letters_failed ON {s}.bus_dead_letters (failed_at);

-- Store a message once and create one delivery per registered group of any
-- of its type names, atomically; wake the consumers at commit. Returns the
-- number of deliveries created, or -1 for a command no group handles.
CREATE FUNCTION {s}.publish_message(
    p_id text,
    p_type text,
    p_schema_version integer,
    p_payload bytea,
    p_type_names text[],
    p_is_command boolean,
    p_channel text
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    made integer;
    grp text;
BEGIN
    IF p_is_command AND NOT EXISTS (
        SELECT 1 FROM {s}.bus_subscriptions WHERE type_name = ANY (p_type_names)
    ) THEN
        RETURN -1;
    END IF;
    INSERT INTO {s}.bus_messages
        (message_id, type, schema_version, payload, type_names)
    VALUES (p_id, p_type, p_schema_version, p_payload, p_type_names)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    made := 0;
    FOR grp IN
        INSERT INTO {s}.bus_deliveries (message_id, group_name)
        SELECT DISTINCT p_id, sub.group_name FROM {s}.bus_subscriptions AS sub
        WHERE sub.type_name = ANY (p_type_names)
        RETURNING group_name
    LOOP
        PERFORM pg_notify(p_channel, grp);
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;
"""

_CHECKPOINTS: Final = r"""
CREATE TABLE {s}.checkpoints (
    name text PRIMARY KEY,
    position bigint NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""

#: (version, description, SQL template with ``{s}`` for the quoted schema).
MIGRATIONS: Final = (
    (1, "event store: streams, events, global counter, snapshots", _STORE),
    (2, "durable message bus: messages, deliveries, dead letters", _BUS),
    (3, "checkpoints: one position per subscriber name", _CHECKPOINTS),
)
#: The schema version this code creates and understands.
LATEST_VERSION: Final = MIGRATIONS[-1][0]


async def _current_version(
    connection: PoolConnectionProxy[Any] | asyncpg.Connection[Any], schema: str
) -> int:
    table = await connection.fetchval(
        "SELECT to_regclass($1)", f"{quote_ident(schema)}.schema_migrations"
    )
    if table is None:
        return 0
    value = await connection.fetchval(
        f"SELECT max(version) FROM {quote_ident(schema)}.schema_migrations"
    )
    return int(value or 0)


def _check_not_newer(version: int, schema: str, latest: int) -> None:
    if version > latest:
        msg = (
            f"PostgreSQL schema {schema!r} is at version {version}, newer than "
            f"version {latest} that this orchestrix knows; upgrade "
            f"orchestrix (nothing was changed)"
        )
        raise SchemaVersionError(msg)


async def migrate(
    connection: PoolConnectionProxy[Any] | asyncpg.Connection[Any],
    schema: str,
    migrations: Sequence[tuple[int, str, str]] = MIGRATIONS,
) -> int:
    """Create or upgrade orchestrix's tables in *schema*; return its version.

    Idempotent and safe when several processes run it at once. *migrations*
    defaults to every step this code knows; tests pass a prefix to build a
    schema as an older release left it.

    Raises:
        SchemaVersionError: The schema is newer than the last of *migrations*.
    """
    quoted = quote_ident(schema)
    latest = migrations[-1][0]
    version = await _current_version(connection, schema)
    _check_not_newer(version, schema, latest)
    if version == latest:
        return version
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_CLASS, schema
        )
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        await connection.execute(
            f"CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations ("
            "version integer PRIMARY KEY, description text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        version = await _current_version(connection, schema)
        _check_not_newer(version, schema, latest)
        for number, description, template in migrations:
            if number <= version:
                continue
            await connection.execute(template.replace("{s}", quoted))
            await connection.execute(
                f"INSERT INTO {quoted}.schema_migrations (version, description) "
                "VALUES ($1, $2)",
                number,
                description,
            )
            version = number
    return version


async def open_migrated_pool(options: PostgresOptions) -> asyncpg.Pool[Any]:
    """Open a pool for *options* and bring its schema to `LATEST_VERSION`.

    Raises:
        BackendUnavailable: The server cannot be reached.
        SchemaVersionError: The schema is newer than this code.
    """
    pool = await create_pool(options)
    try:
        async with pool.acquire() as connection:
            await migrate(connection, options.schema)
    except BaseException as exc:
        await pool.close()
        if isinstance(exc, OrchestrixError) or not isinstance(exc, Exception):
            raise
        raise_translated(exc, f"cannot prepare schema {options.schema!r}")
    return pool
