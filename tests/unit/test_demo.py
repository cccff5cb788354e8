"""The bank demo runs end to end and keeps its invariant."""

from __future__ import annotations

from orchestrix.demo import main, run


async def test_demo_runs_on_memory() -> None:
    """On an empty store the demo opens two accounts and reports balances."""
    lines = await run("memory://", print_line=False)
    assert "empty store: opening the accounts" in lines
    assert "opened alice for Alice" in lines
    assert "transferred 25.00 EUR from alice to bob" in lines
    assert any(
        line.startswith("rejected Withdraw: bob holds 25.00 EUR") for line in lines
    )
    assert any("no demo.bank.account with id 'carol'" in line for line in lines)
    assert " alice (Alice): 45.00 EUR, version 4" in lines
    assert "   bob (Bob): 25.00 EUR, version 2" in lines
    assert lines[-1] == "events stored: 6"


def test_main_prints_the_run(capsys: object) -> None:
    """``python -m orchestrix.demo URL`` prints what happened and exits 0."""
    assert main(["memory://"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "events stored: 6" in out


async def test_second_run_continues_from_the_first(tmp_path: object) -> None:
    """On a SQLite file the second run finds the first run's events and adds to them."""
    url = f"sqlite:///{tmp_path}/bank.db"
    first = await run(url, print_line=False)
    second = await run(url, print_line=False)
    assert "empty store: opening the accounts" in first
    assert "continuing: 6 events already stored" in second
    assert not any(line.startswith("opened") for line in second)
    assert " alice (Alice): 90.00 EUR, version 7" in second
    assert "   bob (Bob): 50.00 EUR, version 3" in second
    assert second[-1] == "events stored: 10"
