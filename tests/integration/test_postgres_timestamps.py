"""The timestamptz codec on orchestrix's PostgreSQL pools matches the driver's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest

from orchestrix.backends.postgres._connection import create_pool, parse_url

pytestmark = pytest.mark.postgres

_VALUES = (
    "2000-01-01 00:00:00+00",
    "1999-12-31 23:59:59.999999+00",
    "2026-11-22 10:11:12.345678+00",
    "1970-01-01 00:00:00+00",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "infinity",
    "-infinity",
)
_SELECT = "SELECT unnest($1::text[])::timestamptz"


async def test_decoded_timestamps_equal_the_drivers(postgres_url: str) -> None:
    """Every timestamptz, infinities included, decodes as asyncpg's own codec does."""
    pool = await create_pool(parse_url(postgres_url))
    plain = await asyncpg.connect(postgres_url)
    try:
        ours = [row[0] for row in await pool.fetch(_SELECT, list(_VALUES))]
        theirs = [row[0] for row in await plain.fetch(_SELECT, list(_VALUES))]
        repeated = [row[0] for row in await pool.fetch(_SELECT, list(_VALUES))]
    finally:
        await plain.close()
        await pool.close()
    assert ours == theirs
    assert repeated == theirs
    assert all(value.tzinfo is UTC for value in ours[:-2])


async def test_timestamps_round_trip_as_parameters(postgres_url: str) -> None:
    """Aware datetimes sent as parameters arrive as the same instant."""
    moments = [
        datetime(2026, 11, 22, 10, 11, 12, 345678, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
    ]
    pool = await create_pool(parse_url(postgres_url))
    try:
        back = [await pool.fetchval("SELECT $1::timestamptz", m) for m in moments]
        epochs = [
            await pool.fetchval("SELECT extract(epoch FROM $1::timestamptz)", m)
            for m in moments
        ]
    finally:
        await pool.close()
    assert back == moments
    assert [float(e) for e in epochs] == [m.timestamp() for m in moments]
