"""The pytest plugin's fixtures, run in a separate pytest process.

Plugin auto-loading is disabled in the inner runs and both plugins are named
with ``-p``, so the results do not depend on which entry points are installed.
The inner runs use pytest-asyncio's strict mode, the most demanding one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Sequence

pytest_plugins = ["pytester"]

PLUGINS = ("-p", "pytest_asyncio.plugin", "-p", "orchestrix.testing.pytest_plugin")

INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""

#: A backend registered for the ``fake`` scheme, recording the URLs it opens.
FAKE_BACKEND = """
from importlib.metadata import EntryPoint

import orchestrix.config
from orchestrix.backends.memory import backend as memory

OPENED = []


class FakeBackend:
    async def open_store(self, url):
        OPENED.append(("store", url))
        return await memory.open_store("memory://")

    async def open_snapshot_store(self, url):
        OPENED.append(("snapshots", url))
        return await memory.open_snapshot_store("memory://")

    async def open_bus(self, url):
        OPENED.append(("bus", url))
        return await memory.open_bus("memory://")


BACKEND = FakeBackend()
orchestrix.config.entry_points = lambda group: [
    EntryPoint(name="fake", value="conftest:BACKEND", group=group)
]
"""


@pytest.fixture(autouse=True)
def inner_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Give every inner run the same ini file and a clean environment."""
    pytester.makeini(INI)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in ("ORCHESTRIX_TEST_STORE_URL", "ORCHESTRIX_TEST_BUS_URL"):
        monkeypatch.delenv(name, raising=False)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in a subprocess with only pytest-asyncio and our plugin."""
    return pytester.runpytest_subprocess(*PLUGINS, *args)


def assert_outcomes(result: pytest.RunResult, lines: Sequence[str] = ()) -> None:
    """Fail with the inner run's output unless every test passed."""
    if lines:
        result.stdout.fnmatch_lines(list(lines))
    assert result.ret == 0, result.stdout.str()


def test_fixtures_are_in_memory_by_default(pytester: pytest.Pytester) -> None:
    """Without a URL the three fixtures are fresh in-memory resources."""
    pytester.makepyfile(
        """
        import pytest
        from orchestrix.backends.memory import (
            InMemoryEventStore, InMemoryMessageBus, InMemorySnapshotStore,
        )

        @pytest.mark.asyncio
        async def test_types(event_store, snapshot_store, message_bus):
            assert isinstance(event_store, InMemoryEventStore)
            assert isinstance(snapshot_store, InMemorySnapshotStore)
            assert isinstance(message_bus, InMemoryMessageBus)
            assert event_store.streams() == []
        """
    )
    result = run(pytester)
    assert_outcomes(
        result, ["orchestrix: store memory://, bus memory://", "*1 passed*"]
    )


def test_each_test_gets_a_fresh_store_closed_afterwards(
    pytester: pytest.Pytester,
) -> None:
    """A fixture's resource is new per test and closed when the test ends."""
    pytester.makepyfile(
        """
        import pytest
        from orchestrix import Event, ResourceClosedError

        EARLIER = []

        @pytest.mark.asyncio
        async def test_first(event_store, message_bus):
            await event_store.append("s", [Event()])
            EARLIER.extend([event_store, message_bus])

        @pytest.mark.asyncio
        async def test_second(event_store):
            assert event_store.streams() == []
            store, bus = EARLIER
            with pytest.raises(ResourceClosedError):
                await store.stream_version("s")
            with pytest.raises(ResourceClosedError):
                await bus.publish(Event())
        """
    )
    assert_outcomes(run(pytester), ["*2 passed*"])


def test_command_line_urls_select_the_backend(pytester: pytest.Pytester) -> None:
    """``--orchestrix-store-url`` and ``--orchestrix-bus-url`` pick the backends."""
    pytester.makeconftest(FAKE_BACKEND)
    pytester.makepyfile(
        """
        import pytest
        from conftest import OPENED

        @pytest.mark.asyncio
        async def test_opened(event_store, snapshot_store, message_bus):
            assert OPENED == [
                ("store", "fake://store"),
                ("snapshots", "fake://store"),
                ("bus", "fake://bus"),
            ]
        """
    )
    result = run(
        pytester,
        "--orchestrix-store-url=fake://store",
        "--orchestrix-bus-url=fake://bus",
    )
    assert_outcomes(result, ["*1 passed*"])


def test_environment_selects_and_option_wins(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment variables pick the backends; an option overrides them."""
    monkeypatch.setenv("ORCHESTRIX_TEST_STORE_URL", "fake://from-env")
    monkeypatch.setenv("ORCHESTRIX_TEST_BUS_URL", "fake://ignored")
    pytester.makeconftest(FAKE_BACKEND)
    pytester.makepyfile(
        """
        import pytest
        from conftest import OPENED

        @pytest.mark.asyncio
        async def test_opened(event_store, message_bus):
            assert OPENED == [("store", "fake://from-env"), ("bus", "fake://option")]
        """
    )
    result = run(pytester, "--orchestrix-bus-url=fake://option")
    assert_outcomes(result, ["*1 passed*"])


def test_bad_url_fails_clearly_without_the_password(
    pytester: pytest.Pytester,
) -> None:
    """An unknown scheme errors in the fixture, listing schemes, hiding passwords."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_store(event_store):
            pass
        """
    )
    result = run(pytester, "--orchestrix-store-url=nosuch://user:s3cret@host/db")
    result.stdout.fnmatch_lines(
        [
            "orchestrix: store nosuch://user:***@host/db, bus memory://",
            (
                "*orchestrix fixture 'event_store' cannot open nosuch://user:***@host/db:"
                " ConfigurationError: no backend for URL scheme 'nosuch'*known schemes*"
            ),
            "*1 error*",
        ]
    )
    assert "s3cret" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_options_are_documented_in_help(pytester: pytest.Pytester) -> None:
    """``pytest --help`` lists both URL options and their variables."""
    result = run(pytester, "--help")
    result.stdout.fnmatch_lines(
        [
            "orchestrix test backends:",
            "*--orchestrix-store-url=URL*",
            "*ORCHESTRIX_TEST_STORE_URL*",
            "*--orchestrix-bus-url=URL*",
        ]
    )
