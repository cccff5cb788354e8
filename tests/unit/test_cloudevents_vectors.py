"""Public CloudEvents test vectors run against `orchestrix.cloudevents`.

The vectors live beside the repository in ``../shared/cloudevents-vectors``
(set ``ORCHESTRIX_CLOUDEVENTS_VECTORS`` to use another directory). When they
are missing the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrix.cloudevents import (
    CloudEvent,
    from_http,
    from_structured,
    to_binary,
    to_structured,
)
from orchestrix.errors import CloudEventsFormatError

_DEFAULT = Path(__file__).parents[2] / "../shared/cloudevents-vectors"

SDK_JAVA_VALID = [
    "min.json",
    "min_subject_null.json",
    "json_data_with_ext.json",
    "json_data_with_fractional_time.json",
    "base64_xml_data.json",
]


@pytest.fixture(scope="module")
def vectors() -> Path:
    """The vectors directory (skip, or fail under CI, when it is missing)."""
    directory = Path(os.environ.get("ORCHESTRIX_CLOUDEVENTS_VECTORS", _DEFAULT))
    if not (directory / "README.md").is_file():
        text = (
            f"CloudEvents vectors not found at {directory.resolve()}; set "
            f"ORCHESTRIX_CLOUDEVENTS_VECTORS to their directory"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {text}", pytrace=False)
        pytest.skip(text)
    return directory


def _load_json(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


# --- sdk-java JSON files --------------------------------------------------------------


@pytest.mark.parametrize("name", SDK_JAVA_VALID)
def test_sdk_java_valid_events_parse_and_round_trip(vectors: Path, name: str) -> None:
    """Each valid sdk-java event parses, and writes back as the same document."""
    path = vectors / "sdk-java" / "v1" / name
    document = _load_json(path)
    event = from_structured(path.read_bytes())
    written = json.loads(to_structured(event)[1])
    # JSON null means absent, so the output leaves such members out.
    assert written == {k: v for k, v in document.items() if v is not None}
    assert from_structured(to_structured(event)[1]) == event
    assert event.attributes() == {
        k: v
        for k, v in document.items()
        if v is not None and k not in ("data", "data_base64")
    }


def test_sdk_java_values_have_their_types(vectors: Path) -> None:
    """Typed extensions, null subject, fractional time and base64 data are read."""
    v1 = vectors / "sdk-java" / "v1"
    ext = from_structured((v1 / "json_data_with_ext.json").read_bytes())
    assert dict(ext.extensions) == {"astring": "aaa", "aboolean": True, "anumber": 10}
    assert ext.data == {}
    assert ext.time == "2018-04-26T14:48:09+02:00"
    null = from_structured((v1 / "min_subject_null.json").read_bytes())
    assert null.subject is None
    fractional = from_structured(
        (v1 / "json_data_with_fractional_time.json").read_bytes()
    )
    assert fractional.time == "2018-04-26T14:48:09.1234Z"
    xml = from_structured((v1 / "base64_xml_data.json").read_bytes())
    assert xml.data == b"<stuff></stuff>"
    assert xml.datacontenttype == "application/xml"


def test_sdk_java_decimal_extension_is_rejected(vectors: Path) -> None:
    """fail_numeric_decimal.json: 42.42 is no CloudEvents Integer."""
    body = (vectors / "sdk-java" / "v1" / "fail_numeric_decimal.json").read_bytes()
    with pytest.raises(CloudEventsFormatError) as exc:
        from_structured(body)
    assert exc.value.attribute == "decimal"
    assert "whole number" in exc.value.rule


# --- conformance YAML -----------------------------------------------------------------


def _yaml_events(path: Path) -> list[dict[str, Any]]:
    # BaseLoader keeps every scalar a str: "1.0" and the times stay text.
    return [
        doc for doc in yaml.load_all(path.read_text("utf-8"), yaml.BaseLoader) if doc
    ]


def _http_message(
    vector: dict[str, Any], mode: str
) -> tuple[list[tuple[str, str]], bytes]:
    """Build the HTTP request the conformance tool sends for *vector*."""
    context = dict(vector["ContextAttributes"])
    extensions = context.pop("Extensions", {}) or {}
    data: str = vector.get("Data", "")
    transport = list((vector.get("TransportExtensions") or {}).items())
    content_type = context.get("datacontenttype")
    if mode == "binary":
        headers = [
            (f"ce-{name}", _percent(value))
            for name, value in {**context, **extensions}.items()
            if name != "datacontenttype"
        ]
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        return headers + transport, data.encode("utf-8")
    document: dict[str, Any] = {**context, **extensions}
    if data:
        is_json = content_type is None or "json" in content_type
        document["data"] = json.loads(data) if is_json else data
    headers = [("Content-Type", "application/cloudevents+json"), *transport]
    return headers, json.dumps(document).encode("utf-8")


def _percent(value: str) -> str:
    return "".join(
        c
        if "!" <= c <= "~" and c not in '"%'
        else "".join(f"%{b:02X}" for b in c.encode())
        for c in value
    )


def _check(event: CloudEvent, vector: dict[str, Any]) -> None:
    context = dict(vector["ContextAttributes"])
    extensions = context.pop("Extensions", {}) or {}
    assert event.attributes() == {**context, **extensions}
    data: str = vector.get("Data", "")
    if event.media_type.is_json:
        assert event.data == json.loads(data)
    else:
        assert event.data == data


def _minimum_cases() -> list[tuple[int, str]]:
    return [(index, mode) for index in range(6) for mode in ("binary", "structured")]


@pytest.mark.parametrize(("index", "mode"), _minimum_cases())
def test_conformance_minimum_events(vectors: Path, index: int, mode: str) -> None:
    """v1_minimum.yaml: text, JSON and XML data arrive intact in both modes."""
    vector = _yaml_events(
        vectors / "conformance" / "yaml" / "v1.0" / "v1_minimum.yaml"
    )[index]
    [event] = from_http(*_http_message(vector, mode))
    _check(event, vector)
    for writer in (to_binary, to_structured):
        assert from_http(*writer(event)) == [event]


@pytest.mark.parametrize("index", [0, 1])
def test_conformance_v1_event_with_a_newline_is_rejected(
    vectors: Path, index: int
) -> None:
    """v1.yaml as written: its block scalar ends comexampleextension2 in a newline.

    A String must not hold control characters (CloudEvents 1.0.2, Type
    System), so the event is refused in both modes, naming the extension.
    """
    vector = _yaml_events(vectors / "conformance" / "yaml" / "v1.yaml")[index]
    assert vector["ContextAttributes"]["Extensions"]["comexampleextension2"].endswith(
        "\n"
    )
    with pytest.raises(CloudEventsFormatError) as exc:
        from_http(*_http_message(vector, vector["Mode"]))
    assert exc.value.attribute == "comexampleextension2"
    assert "U+000A" in exc.value.rule


@pytest.mark.parametrize("index", [0, 1])
def test_conformance_v1_event_parses_in_its_mode(vectors: Path, index: int) -> None:
    """v1.yaml with the YAML line break trimmed: both modes, transport headers too."""
    vector = _yaml_events(vectors / "conformance" / "yaml" / "v1.yaml")[index]
    extensions = vector["ContextAttributes"]["Extensions"]
    extensions["comexampleextension2"] = extensions["comexampleextension2"].rstrip("\n")
    [event] = from_http(*_http_message(vector, vector["Mode"]))
    _check(event, vector)
    assert event.extensions["comexampleextension2"] == '{"othervalue": 5}'
    for writer in (to_binary, to_structured):
        assert from_http(*writer(event)) == [event]


# --- HTTP binding feature file --------------------------------------------------------


def _scenarios(text: str) -> list[dict[str, Any]]:
    """Return each scenario of the feature file, Examples expanded.

    Each has the raw request text, the expected attributes and the expected
    JSON data.
    """
    result = []
    for block in re.split(r"\n\s*Scenario Outline:", text)[1:]:
        strings = [
            textwrap.dedent(m.group(2)).strip("\n")
            for m in re.finditer(r'\n([ \t]*)"""\n(.*?)\n\1"""', block, re.DOTALL)
        ]
        request, data = strings
        rows = [
            [cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in block.splitlines()
            if line.strip().startswith("|")
        ]
        header_index = next(i for i, row in enumerate(rows) if row == ["contentType"])
        attribute_rows = [r for r in rows[:header_index] if r != ["key", "value"]]
        for (content_type,) in rows[header_index + 1 :]:
            result.append(
                {
                    "request": request.replace("<contentType>", content_type),
                    "attributes": {
                        k: v.replace("<contentType>", content_type)
                        for k, v in attribute_rows
                    },
                    "data": json.loads(data),
                }
            )
    return result


def _parse_request(raw: str) -> tuple[list[tuple[str, str]], bytes]:
    head, _, body = raw.partition("\n\n")
    request_line, *lines = head.splitlines()
    assert request_line.startswith("POST ")
    headers = [
        (n.strip(), v.strip()) for n, _, v in (ln.partition(":") for ln in lines)
    ]
    return headers, body.encode("utf-8")


def _feature(vectors: Path) -> list[dict[str, Any]]:
    path = vectors / "conformance" / "features" / "http-protocol-binding.feature"
    return _scenarios(path.read_text("utf-8"))


@pytest.mark.parametrize("index", range(4))
def test_http_binding_feature_requests(vectors: Path, index: int) -> None:
    """Each raw request of the feature file gives the attributes and data listed."""
    scenarios = _feature(vectors)
    assert len(scenarios) == 4
    scenario = scenarios[index]
    [event] = from_http(*_parse_request(scenario["request"]))
    assert event.attributes() == scenario["attributes"]
    assert event.data == scenario["data"]


# --- JSON Schema ----------------------------------------------------------------------


def _schema(vectors: Path) -> dict[str, Any]:
    return _load_json(vectors / "spec" / "cloudevents.json")


def test_schema_members_are_the_known_attributes(vectors: Path) -> None:
    """The schema's properties are exactly our context attributes plus data."""
    from orchestrix._cloudevents_event import CONTEXT_ATTRIBUTES

    names = set(_schema(vectors)["properties"])
    assert names == {*CONTEXT_ATTRIBUTES, "data", "data_base64"}


def test_schema_required_attributes_are_enforced(vectors: Path) -> None:
    """Leaving out any attribute the schema requires is rejected, naming it."""
    required = _schema(vectors)["required"]
    assert sorted(required) == ["id", "source", "specversion", "type"]
    complete = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    for name in required:
        for broken in (
            {k: v for k, v in complete.items() if k != name},
            {**complete, name: None},
        ):
            with pytest.raises(CloudEventsFormatError) as exc:
                from_structured(json.dumps(broken))
            assert exc.value.attribute == name


def test_schema_examples_are_accepted(vectors: Path) -> None:
    """Every example value in the schema is valid for its attribute."""
    base = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    properties = _schema(vectors)["properties"]
    checked = 0
    for name, spec in properties.items():
        for example in spec.get("examples", []):
            document = {**base, name: example}
            if name == "datacontenttype":
                document.pop("data", None)
            event = from_structured(json.dumps(document))
            if name == "data_base64":
                assert event.data == b"foob"
            elif name != "data":
                assert event.attributes()[name] == example
            checked += 1
    assert checked >= 15


def test_schema_minimum_lengths_are_enforced(vectors: Path) -> None:
    """Where the schema says minLength 1, an empty string is rejected."""
    definitions = _schema(vectors)["definitions"]
    base = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    for name, spec in _schema(vectors)["properties"].items():
        definition = definitions[spec["$ref"].rsplit("/", 1)[1]]
        if definition.get("minLength") != 1 or name == "specversion":
            continue
        with pytest.raises(CloudEventsFormatError) as exc:
            from_structured(json.dumps({**base, name: ""}))
        assert exc.value.attribute == name
