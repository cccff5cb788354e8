"""The faster ``__init__`` of frozen, slotted message dataclasses (ADR 0029)."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import InitVar, dataclass, field
from datetime import UTC, datetime

import pytest

from orchestrix._fast_init import install_fast_init
from orchestrix.codec import decode, encode
from orchestrix.messages import Event


@dataclass(frozen=True, kw_only=True, slots=True)
class Transferred(Event, type="test.fast_init.transferred"):
    """A slotted event: it gets the faster ``__init__``."""

    source_account: str
    target_account: str
    amount: int = 0
    tags: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, kw_only=True)
class TransferredTwin(Event, type="test.fast_init.transferred_twin"):
    """The same fields without slots: it keeps the dataclass ``__init__``."""

    source_account: str
    target_account: str
    amount: int = 0
    tags: tuple[str, ...] = field(default_factory=tuple)


def _parameters(cls: type) -> list[tuple[str, object, object]]:
    return [
        (p.name, p.kind, "<factory>" if repr(p.default) == "<factory>" else p.default)
        for p in inspect.signature(cls).parameters.values()
    ]


def test_slotted_event_gets_the_same_signature_as_its_dataclass_twin():
    """Names, keyword-only kinds and defaults match the generated __init__."""
    assert _parameters(Transferred) == _parameters(TransferredTwin)
    assert Transferred.__init__.__qualname__ == "Transferred.__init__"


def test_fields_defaults_and_factories_are_set_like_the_dataclass_does():
    """Given values, static defaults and fresh factory values land on the fields."""
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    given = Transferred(
        source_account="a", target_account="b", amount=5, time=now, subject="s"
    )
    assert (given.source_account, given.target_account, given.amount) == ("a", "b", 5)
    assert (given.time, given.subject, given.correlation_id) == (now, "s", None)
    first = Transferred(source_account="a", target_account="b")
    second = Transferred(source_account="a", target_account="b")
    assert first.amount == 0
    assert first.tags == ()
    assert first.id != second.id
    assert first.time.tzinfo is UTC


@pytest.mark.parametrize("cls", [Transferred, TransferredTwin])
def test_wrong_arguments_fail_as_with_the_dataclass(cls: type) -> None:
    """Missing, unknown and positional arguments raise TypeError naming them."""
    with pytest.raises(TypeError, match="missing 1 required keyword-only.*'target"):
        cls(source_account="a")
    with pytest.raises(TypeError, match="unexpected keyword argument 'amout'"):
        cls(source_account="a", target_account="b", amout=1)
    with pytest.raises(TypeError, match="positional argument"):
        cls("a", "b")


def test_instances_stay_frozen_comparable_and_picklable():
    """The replacement changes construction only."""
    event = Transferred(source_account="a", target_account="b", amount=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.amount = 2  # type: ignore[misc]
    assert dataclasses.replace(event, amount=2).amount == 2
    assert pickle.loads(pickle.dumps(event)) == event  # noqa: S301 -- our own bytes
    assert decode(encode(event)) == event
    assert hash(event) == hash(dataclasses.replace(event))


def test_frozen_slotted_dataclass_is_replaced():
    """A frozen, keyword-only, slotted dataclass gets the faster __init__."""

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Plain:
        a: int
        b: str = "x"

    assert install_fast_init(Plain) is True
    assert Plain(a=1) == Plain(a=1, b="x")


@pytest.mark.parametrize(
    "decorate",
    [
        dataclass(frozen=True, kw_only=True),  # no slots
        dataclass(kw_only=True, slots=True),  # not frozen
        dataclass(frozen=True, slots=True),  # positional parameters
    ],
    ids=["no-slots", "not-frozen", "positional"],
)
def test_other_dataclasses_keep_their_generated_init(decorate):
    """Without slots, frozenness or keyword-only fields nothing is replaced."""
    cls = decorate(type("Other", (), {"__annotations__": {"a": "int"}}))
    original = cls.__init__
    assert install_fast_init(cls) is False
    assert cls.__init__ is original


def test_post_init_initvar_and_init_false_keep_the_generated_init():
    """Classes whose construction does more than set fields are left alone."""

    @dataclass(frozen=True, kw_only=True, slots=True)
    class Checked(Event, type="test.fast_init.checked"):
        amount: int

        def __post_init__(self) -> None:
            if self.amount < 0:
                raise ValueError(self.amount)

    @dataclass(frozen=True, kw_only=True, slots=True)
    class WithInitVar(Event, type="test.fast_init.initvar"):
        amount: int = 0
        scale: InitVar[int] = 1

    @dataclass(frozen=True, kw_only=True, slots=True)
    class WithDerived(Event, type="test.fast_init.derived"):
        amount: int
        doubled: int = field(init=False, default=0)

    for cls in (Checked, WithInitVar, WithDerived):
        original = cls.__init__
        assert install_fast_init(cls) is False, cls.__name__
        assert cls.__init__ is original
    with pytest.raises(ValueError, match="-1"):
        Checked(amount=-1)
    assert WithInitVar(amount=2, scale=3).amount == 2
    assert WithDerived(amount=2).doubled == 0
    assert "doubled" not in inspect.signature(WithDerived).parameters
    with pytest.raises(TypeError, match="unexpected keyword argument 'doubled'"):
        WithDerived(amount=2, doubled=5)  # type: ignore[call-arg]
