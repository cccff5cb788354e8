"""Nothing is stored that cannot be read back (issue 10).

Property tests over every field type the codec supports: an encoded event
always decodes to an equal event, field types included, whether the codec
proves it by the types of the values (the fast path) or by decoding again. A
value the stored form cannot keep (another type than the field declares, NaN
or Infinity, a naive datetime, an offset with seconds, deep nesting) is refused
by `orchestrix.codec.encode` with a `SerializationError` naming the field, so
no payload is ever produced for it.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid  # noqa: TC003 -- msgspec resolves field annotations at run time
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestrix._codec_check
from orchestrix import Event, SerializationError
from orchestrix.codec import decode, decode_fields, encode

if TYPE_CHECKING:
    from orchestrix.messages import Message

PROPERTY = settings(max_examples=100, deadline=None)
WRONG = settings(max_examples=20, deadline=None)


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Kind(enum.StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"


@dataclass(frozen=True, kw_only=True, slots=True)
class Point:
    x: int
    y: float
    label: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Elsewhere:
    z: int


class Pair(NamedTuple):
    left: int
    right: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Deposited(Event, type="test.lossless.deposited"):
    """Simple field types only: checked by type, without decoding again."""

    account_id: str
    amount: int
    rate: float
    note: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Shipped(Event, type="test.lossless.shipped"):
    """Containers and dataclasses of simple types: still checked by type alone."""

    lines: tuple[Point, ...]
    origin: Point | None
    tags: frozenset[str]
    counts: dict[str, int]
    scores: list[float]
    pair: tuple[int, str]
    at: datetime
    clock: time | None
    span: timedelta
    blob: bytes
    mode: Literal["on", "off"]
    colour: Colour
    key: uuid.UUID
    money: Decimal
    day: date


@dataclass(frozen=True, kw_only=True, slots=True)
class Scalars(Event, type="test.lossless.scalars"):
    text: str
    count: int
    ratio: float
    flag: bool
    maybe: int | None
    at: datetime
    day: date
    number_or_text: int | str
    clock: time
    span: timedelta
    key: uuid.UUID
    money: Decimal
    blob: bytes
    raw: bytearray
    colour: Colour
    level: Level
    kind: Kind
    mode: Literal["on", "off"]
    rank: Literal[1, 2]


@dataclass(frozen=True, kw_only=True, slots=True)
class Containers(Event, type="test.lossless.containers"):
    items: list[int]
    fixed: tuple[int, str]
    many: tuple[float, ...]
    unique: set[str]
    frozen: frozenset[int]
    by_name: dict[str, Point]
    by_number: dict[int, str]
    points: list[Point]
    pair: Pair
    nested: Point | None
    anything: Any
    moments: list[list[datetime]]


@dataclass(frozen=True, kw_only=True, slots=True)
class Line:
    sku: str
    quantity: int
    price: Decimal
    at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SpecialLine(Line):
    pass


# More fields than the fast path copies in place: checked by a call per item.
Wide = dataclasses.make_dataclass(
    "Wide", [(f"f{i}", int) for i in range(40)], frozen=True, slots=True
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Ordered(Event, type="test.lossless.ordered"):
    """Nested containers of simple types: walked in place by the fast path."""

    lines: list[dict[str, int]]
    items: list[Line]
    by_sku: dict[str, list[int]]
    grid: list[list[float]]
    labels: set[str]
    codes: tuple[int, ...]
    pairs: list[tuple[int, str]]
    maybe: list[int | None]
    optional: list[str] | None
    moments: dict[str, datetime]
    clocks: list[time]
    amounts: frozenset[Decimal]
    colours: list[Colour]
    modes: tuple[Literal["on", "off"], ...]
    keys: list[uuid.UUID]
    wide: list[Wide]  # type: ignore[valid-type]  # make_dataclass builds a class


# Nested deeper than the fast path writes loops for: decoded again instead.
_DEEP: Any = float
for _ in range(14):
    _DEEP = list[_DEEP]


@dataclass(frozen=True, kw_only=True, slots=True)
class Deep(Event, type="test.lossless.deep"):
    value: _DEEP  # a list type 14 levels deep, built above


# --- strategies -----------------------------------------------------------------

texts = st.text(max_size=12)
finite = st.floats(allow_nan=False, allow_infinity=False)
not_finite = st.sampled_from([float("nan"), float("inf"), float("-inf")])
# JSON keeps offsets to the minute: every whole-minute offset, and UTC itself.
zones = st.just(UTC) | st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware = st.datetimes(timezones=zones)
naive = st.datetimes()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | texts,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3)
    ),
    max_leaves=8,
)
points = st.builds(Point, x=st.integers(), y=finite, label=st.none() | texts)

deposited = st.builds(
    Deposited,
    account_id=texts,
    amount=st.integers(),
    rate=finite,
    note=st.none() | texts,
    at=st.none() | aware,
    subject=st.none() | texts,
    time=aware,
)
shipped = st.builds(
    Shipped,
    lines=st.lists(points, max_size=3).map(tuple),
    origin=st.none() | points,
    tags=st.frozensets(texts, max_size=3),
    counts=st.dictionaries(texts, st.integers(), max_size=3),
    scores=st.lists(finite, max_size=3),
    pair=st.tuples(st.integers(), texts),
    at=aware,
    clock=st.none() | st.times(timezones=st.none() | zones),
    span=st.timedeltas(),
    blob=st.binary(max_size=12),
    mode=st.sampled_from(["on", "off"]),
    colour=st.sampled_from(Colour),
    key=st.uuids(),
    money=st.decimals(allow_nan=False, allow_infinity=False),
    day=st.dates(),
)
scalars = st.builds(
    Scalars,
    text=texts,
    count=st.integers(),
    ratio=finite,
    flag=st.booleans(),
    maybe=st.none() | st.integers(),
    at=aware,
    day=st.dates(),
    clock=st.times(timezones=st.none() | zones),
    span=st.timedeltas(),
    key=st.uuids(),
    money=st.decimals(allow_nan=False),
    blob=st.binary(max_size=12),
    raw=st.binary(max_size=12).map(bytearray),
    colour=st.sampled_from(Colour),
    level=st.sampled_from(Level),
    kind=st.sampled_from(Kind),
    mode=st.sampled_from(["on", "off"]),
    rank=st.sampled_from([1, 2]),
    number_or_text=st.integers() | texts,
)
containers = st.builds(
    Containers,
    items=st.lists(st.integers(), max_size=4),
    fixed=st.tuples(st.integers(), texts),
    many=st.lists(finite, max_size=4).map(tuple),
    unique=st.sets(texts, max_size=4),
    frozen=st.frozensets(st.integers(), max_size=4),
    by_name=st.dictionaries(texts, points, max_size=3),
    by_number=st.dictionaries(st.integers(), texts, max_size=3),
    points=st.lists(points, max_size=3),
    pair=st.builds(Pair, st.integers(), texts),
    nested=st.none() | points,
    anything=json_values,
    moments=st.lists(st.lists(aware, max_size=2), max_size=2),
)


lines = st.builds(
    Line,
    sku=texts,
    quantity=st.integers(),
    price=st.decimals(allow_nan=False, allow_infinity=False),
    at=st.none() | aware,
)
wides = st.builds(Wide, **{f"f{i}": st.integers() for i in range(40)})
ordered = st.builds(
    Ordered,
    lines=st.lists(st.dictionaries(texts, st.integers(), max_size=3), max_size=3),
    items=st.lists(lines, max_size=3),
    by_sku=st.dictionaries(texts, st.lists(st.integers(), max_size=3), max_size=3),
    grid=st.lists(st.lists(finite, max_size=3), max_size=3),
    labels=st.sets(texts, max_size=3),
    codes=st.lists(st.integers(), max_size=3).map(tuple),
    pairs=st.lists(st.tuples(st.integers(), texts), max_size=3),
    maybe=st.lists(st.none() | st.integers(), max_size=3),
    optional=st.none() | st.lists(texts, max_size=3),
    moments=st.dictionaries(texts, aware, max_size=3),
    clocks=st.lists(st.times(timezones=st.none() | zones), max_size=3),
    amounts=st.frozensets(
        st.decimals(allow_nan=False, allow_infinity=False), max_size=3
    ),
    colours=st.lists(st.sampled_from(Colour), max_size=3),
    modes=st.lists(st.sampled_from(["on", "off"]), max_size=3).map(tuple),
    keys=st.lists(st.uuids(), max_size=3),
    wide=st.lists(wides, max_size=2),
)


def _empty_containers() -> Containers:
    return Containers(
        items=[],
        fixed=(1, "a"),
        many=(),
        unique=set(),
        frozen=frozenset(),
        by_name={},
        by_number={},
        points=[],
        pair=Pair(1, "a"),
        nested=None,
        anything=None,
        moments=[],
    )


def _assert_reads_back_equal(event: Message) -> None:
    record = encode(event)
    again = decode(record)
    assert again == event
    assert decode_fields(*record) == event
    for item in dataclasses.fields(event):
        name = item.name
        assert type(getattr(again, name)) is type(getattr(event, name)), name


# --- every supported value reads back equal -------------------------------------


@PROPERTY
@given(event=deposited)
def test_simple_fields_read_back_equal(event: Deposited) -> None:
    """An event of simple field types (checked by type alone) reads back equal."""
    _assert_reads_back_equal(event)


@PROPERTY
@given(event=shipped)
def test_containers_of_simple_types_read_back_equal(event: Shipped) -> None:
    """Containers and dataclasses of simple types (checked by type) read back equal."""
    _assert_reads_back_equal(event)


@PROPERTY
@given(event=ordered)
def test_nested_containers_of_simple_types_read_back_equal(event: Ordered) -> None:
    """Lists of dicts, dicts of lists, lists of dataclasses... read back equal."""
    _assert_reads_back_equal(event)


@WRONG
@given(event=deposited | shipped | ordered)
def test_simple_classes_are_checked_without_decoding(event: Message) -> None:
    """Deposited, Shipped and Ordered take the fast path, so the cases below test it.

    The fast path proves by the type of each value, without decoding, that a
    message reads back equal; the round-trip properties above and the refusals
    below therefore check that it is sound.
    """
    encode(event)
    assert orchestrix._codec_check.simple_checks[type(event)](event)


@PROPERTY
@given(event=scalars)
def test_every_scalar_type_reads_back_equal(event: Scalars) -> None:
    """Every supported scalar type reads back as an equal value of the same type."""
    _assert_reads_back_equal(event)


@PROPERTY
@given(event=containers)
def test_every_container_type_reads_back_equal(event: Containers) -> None:
    """Lists, tuples, sets, dicts, nested dataclasses and Any read back equal."""
    _assert_reads_back_equal(event)


@PROPERTY
@given(amount=st.integers(-(2**53), 2**53))
def test_int_in_a_float_field_reads_back_as_an_equal_float(amount: int) -> None:
    """An int that a float represents exactly is accepted in a float field."""
    event = Deposited(account_id="a", amount=1, rate=amount)
    again = decode(encode(event))
    assert again == event
    assert isinstance(again, Deposited)
    assert type(again.rate) is float


# --- every value the stored form cannot keep is refused -------------------------

# (event strategy, field, wrong values for that field)
CASES: list[tuple[str, st.SearchStrategy[Message], str, st.SearchStrategy[Any]]] = [
    ("str-gets-other", deposited, "account_id", st.integers() | finite | st.none()),
    ("int-gets-float", deposited, "amount", finite),
    ("int-gets-bool-or-str", deposited, "amount", st.booleans() | texts),
    ("float-not-finite", deposited, "rate", not_finite),
    ("float-gets-bool-or-str", deposited, "rate", st.booleans() | texts),
    # Above 2**53 a float holds even integers only: odd ones would change.
    (
        "int-too-big-for-float",
        deposited,
        "rate",
        st.integers(2**53).map(lambda n: n | 1),
    ),
    ("optional-datetime-naive", deposited, "at", naive),
    ("optional-datetime-gets-str", deposited, "at", texts),
    ("envelope-time-naive", deposited, "time", naive),
    ("envelope-id-not-str", deposited, "id", st.integers()),
    ("envelope-subject-not-str", deposited, "subject", st.integers()),
    (
        "fast-nested-nan",
        shipped,
        "lines",
        st.builds(Point, x=st.integers(), y=not_finite).map(lambda p: (p,)),
    ),
    ("fast-tuple-gets-list", shipped, "lines", st.lists(points, max_size=2)),
    (
        "fast-nested-gets-other",
        shipped,
        "origin",
        st.builds(Elsewhere, z=st.integers()),
    ),
    (
        "fast-dict-gets-other-values",
        shipped,
        "counts",
        st.dictionaries(texts, texts | finite, min_size=1, max_size=2),
    ),
    (
        "fast-dict-gets-int-keys",
        shipped,
        "counts",
        st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2),
    ),
    ("fast-list-holds-inf", shipped, "scores", not_finite.map(lambda x: [1.0, x])),
    (
        "fast-pair-wrong-shape",
        shipped,
        "pair",
        st.tuples(st.integers()) | st.tuples(texts, st.integers()),
    ),
    ("fast-datetime-naive", shipped, "at", naive),
    (
        "fast-datetime-offset-seconds",
        shipped,
        "at",
        st.datetimes(timezones=st.just(timezone(timedelta(seconds=-90)))),
    ),
    (
        "fast-time-offset-seconds",
        shipped,
        "clock",
        st.times(timezones=st.just(timezone(timedelta(seconds=45)))),
    ),
    (
        "fast-literal-gets-other",
        shipped,
        "mode",
        texts.filter(lambda s: s not in {"on", "off"}),
    ),
    (
        "fast-frozenset-holds-int",
        shipped,
        "tags",
        st.frozensets(st.integers(), min_size=1, max_size=2),
    ),
    (
        "fast-decimal-not-finite",
        shipped,
        "money",
        st.sampled_from([Decimal("NaN"), Decimal("sNaN")]),
    ),
    (
        "fast-list-of-dicts-int-keys",
        ordered,
        "lines",
        st.dictionaries(st.integers(), st.integers(), min_size=1).map(lambda d: [d]),
    ),
    (
        "fast-list-of-dicts-gets-bool-or-str",
        ordered,
        "lines",
        (st.booleans() | texts).map(lambda x: [{}, {"a": 1, "b": x}]),
    ),
    (
        "fast-list-of-dicts-gets-list",
        ordered,
        "lines",
        st.just([[("a", 1)]]),
    ),
    (
        "fast-inline-dataclass-decimal-nan",
        ordered,
        "items",
        st.builds(
            Line, sku=texts, quantity=st.integers(), price=st.just(Decimal("NaN"))
        ).map(lambda line: [line]),
    ),
    (
        "fast-inline-dataclass-naive",
        ordered,
        "items",
        st.builds(
            Line, sku=texts, quantity=st.integers(), price=st.just(Decimal(1)), at=naive
        ).map(lambda line: [line]),
    ),
    (
        "fast-inline-dataclass-gets-subclass",
        ordered,
        "items",
        st.builds(
            SpecialLine, sku=texts, quantity=st.integers(), price=st.just(Decimal(1))
        ).map(lambda line: [line]),
    ),
    (
        "fast-inline-dataclass-gets-bool",
        ordered,
        "items",
        st.builds(
            Line, sku=texts, quantity=st.booleans(), price=st.just(Decimal(1))
        ).map(lambda line: [line]),
    ),
    (
        "fast-dict-of-lists-gets-tuple",
        ordered,
        "by_sku",
        st.lists(st.integers(), max_size=2).map(lambda x: {"a": [], "b": tuple(x)}),
    ),
    (
        "fast-dict-of-lists-gets-float",
        ordered,
        "by_sku",
        finite.map(lambda x: {"a": [1, x]}),
    ),
    (
        "fast-nested-list-holds-nan",
        ordered,
        "grid",
        not_finite.map(lambda x: [[1.0], [x]]),
    ),
    (
        "fast-nested-list-holds-int",
        ordered,
        "grid",
        st.integers(2**53).map(lambda n: [[n | 1]]),
    ),
    (
        "fast-set-holds-int",
        ordered,
        "labels",
        st.sets(st.integers(), min_size=1, max_size=2),
    ),
    ("fast-tuple-holds-bool", ordered, "codes", st.booleans().map(lambda b: (1, b))),
    (
        "fast-list-of-pairs-wrong-shape",
        ordered,
        "pairs",
        (st.tuples(st.integers()) | st.tuples(texts, st.integers())).map(lambda p: [p]),
    ),
    ("fast-list-of-pairs-gets-list", ordered, "pairs", st.just([[1, "a"]])),
    ("fast-optional-items-gets-str", ordered, "maybe", texts.map(lambda x: [None, x])),
    ("fast-optional-list-gets-tuple", ordered, "optional", st.just(("a",))),
    ("fast-dict-of-datetimes-naive", ordered, "moments", naive.map(lambda x: {"a": x})),
    (
        "fast-list-of-times-offset-seconds",
        ordered,
        "clocks",
        st.times(timezones=st.just(timezone(timedelta(seconds=45)))).map(lambda x: [x]),
    ),
    (
        "fast-frozenset-decimal-nan",
        ordered,
        "amounts",
        st.just(frozenset({Decimal(1), Decimal("NaN")})),
    ),
    ("fast-enum-list-gets-raw-value", ordered, "colours", st.just([Colour.RED, "red"])),
    (
        "fast-literal-tuple-gets-other",
        ordered,
        "modes",
        texts.filter(lambda s: s not in {"on", "off"}).map(lambda x: ("on", x)),
    ),
    ("fast-uuid-list-gets-str", ordered, "keys", st.uuids().map(lambda k: [str(k)])),
    (
        "fast-called-dataclass-gets-bool",
        ordered,
        "wide",
        st.just([Wide(*[True] * 40)]),
    ),
    ("bool-gets-int", scalars, "flag", st.integers()),
    (
        "time-offset-with-seconds",
        scalars,
        "clock",
        st.times(timezones=st.just(timezone(timedelta(minutes=1, seconds=30)))),
    ),
    ("date-gets-datetime", scalars, "day", aware),
    ("uuid-gets-str", scalars, "key", st.uuids().map(str)),
    (
        "decimal-nan",
        scalars,
        "money",
        st.just(Decimal("NaN")) | st.just(Decimal("sNaN")),
    ),
    ("enum-gets-raw-value", scalars, "colour", st.sampled_from(["red", "green"])),
    (
        "literal-gets-other",
        scalars,
        "mode",
        texts.filter(lambda s: s not in {"on", "off"}),
    ),
    (
        "list-gets-tuple",
        containers,
        "items",
        st.lists(st.integers(), max_size=3).map(tuple),
    ),
    ("set-gets-list", containers, "unique", st.lists(texts, max_size=3)),
    ("tuple-holds-nan", containers, "many", st.tuples(finite, not_finite)),
    (
        "dict-holds-wrong-type",
        containers,
        "by_name",
        st.dictionaries(texts, st.integers(), min_size=1, max_size=2),
    ),
    (
        "nested-gets-other-dataclass",
        containers,
        "nested",
        st.builds(Elsewhere, z=st.integers()),
    ),
    (
        "nested-holds-nan",
        containers,
        "points",
        st.builds(Point, x=st.integers(), y=not_finite).map(lambda p: [p]),
    ),
    ("nested-list-naive", containers, "moments", naive.map(lambda moment: [[moment]])),
    (
        "any-gets-tuple",
        containers,
        "anything",
        st.lists(st.integers(), max_size=2).map(tuple),
    ),
    ("any-gets-set", containers, "anything", st.frozensets(st.integers(), max_size=2)),
    ("any-holds-nan", containers, "anything", not_finite.map(lambda x: {"k": [1, x]})),
    ("any-gets-datetime", containers, "anything", aware),
    (
        "any-int-keys",
        containers,
        "anything",
        st.dictionaries(st.integers(), texts, min_size=1, max_size=2),
    ),
    (
        "any-gets-decimal-or-uuid",
        containers,
        "anything",
        st.decimals(allow_nan=False) | st.uuids(),
    ),
]


@pytest.mark.parametrize(
    ("events", "field", "wrong"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
@WRONG
@given(data=st.data())
def test_value_that_cannot_be_read_back_is_refused_naming_the_field(
    events: st.SearchStrategy[Message],
    field: str,
    wrong: st.SearchStrategy[Any],
    data: st.DataObject,
) -> None:
    """A value that would not read back equal is refused, naming its field.

    `encode` raises SerializationError (so no payload exists) with a message
    naming the class, the id and ``Class.field``.
    """
    event = data.draw(events)
    bad = dataclasses.replace(event, **{field: data.draw(wrong)})
    with pytest.raises(SerializationError) as info:
        encode(bad)
    text = str(info.value)
    assert f"{type(bad).__qualname__}.{field}" in text
    assert f"{bad.id!r}:" in text


@WRONG
@given(event=deposited, wrong=not_finite)
def test_nan_is_reported_as_nan(event: Deposited, wrong: float) -> None:
    """NaN and Infinity are reported as such, not as a type mismatch."""
    with pytest.raises(SerializationError, match=r"Deposited\.rate: NaN/Infinity"):
        encode(dataclasses.replace(event, rate=wrong))


@WRONG
@given(event=containers, moment=naive)
def test_naive_datetime_is_reported_with_its_path(
    event: Containers, moment: datetime
) -> None:
    """A naive datetime anywhere in an event is refused, with its path."""
    bad = dataclasses.replace(event, moments=[[], [moment]])
    with pytest.raises(
        SerializationError, match=r"Containers\.moments\[1\]\[0\]: .* has no timezone"
    ):
        encode(bad)


@pytest.mark.parametrize("field", ["anything", "items"])
def test_value_nested_too_deeply_is_refused(field: str) -> None:
    """A value nested 10,000 levels deep is refused, naming the field."""
    deep: list[Any] = []
    for _ in range(10_000):
        deep = [deep]
    changes: dict[str, Any] = {field: deep}
    with pytest.raises(
        SerializationError, match=rf"Containers\.{field}: nested more than 256 levels"
    ):
        encode(dataclasses.replace(_empty_containers(), **changes))


@pytest.mark.parametrize(("levels", "stored"), [(255, True), (256, False)])
def test_payloads_nest_at_most_256_levels(levels: int, stored: bool) -> None:
    """A payload nesting up to 256 arrays and objects is stored, a deeper one not.

    The event itself is the first level, so a field value may nest 255 more.
    The limit keeps every stored payload decodable from any reader's stack.
    """
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    event = dataclasses.replace(_empty_containers(), anything=value)
    if stored:
        assert decode(encode(event)) == event
    else:
        with pytest.raises(SerializationError, match=r"Containers\.anything: nested"):
            encode(event)


def test_offset_with_seconds_is_refused() -> None:
    """A UTC offset JSON cannot keep (seconds) is refused rather than rounded."""
    odd = timezone(timedelta(minutes=19, seconds=32))
    event = Deposited(
        account_id="a", amount=1, rate=1.0, at=datetime(1900, 1, 1, tzinfo=odd)
    )
    with pytest.raises(SerializationError, match=r"Deposited\.at: the UTC offset"):
        encode(event)


@pytest.mark.parametrize(("leaf", "stored"), [(1.5, True), (float("nan"), False)])
def test_type_nested_deeper_than_the_fast_path_is_decoded_again(
    leaf: float, stored: bool
) -> None:
    """A field type 14 lists deep reads back equal; NaN at its bottom is refused."""
    value: Any = [leaf]
    for _ in range(13):
        value = [value]
    event = Deep(value=value)
    if stored:
        assert decode(encode(event)) == event
    else:
        with pytest.raises(SerializationError, match=r"Deep\.value(\[0\]){14}: NaN"):
            encode(event)
