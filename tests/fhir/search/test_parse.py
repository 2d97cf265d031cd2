"""SearchParser: query parameters → SearchQuery (types, modifiers, prefixes, escaping, chains, _has,
composites, result parameters, unknown and invalid parameters, compartments)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from rhip.core.errors import InvalidRequest, NotSupported, RhipError, UnknownSearchParameter
from rhip.fhir.search.params import registry
from rhip.fhir.search.parse import SearchParser
from rhip.fhir.search.query import (
    ChainFilter,
    CompartmentFilter,
    CompositeValue,
    Filter,
    HasFilter,
    IdFilter,
    LastUpdatedFilter,
    ParamFilter,
    QuantityValue,
    RangeValue,
    ReferenceValue,
    SearchQuery,
    StringValue,
    TokenValue,
    UriValue,
)
from rhip.fhir.search.values import date_range, implicit_range, parse_decimal

ZONE = ZoneInfo("Asia/Shanghai")
BASE = "http://localhost/fhir"


@pytest.fixture(scope="module")
def parser() -> SearchParser:
    """Built as rhip.bootstrap.container.build_platform builds it."""
    return SearchParser(registry(), ZONE, (BASE,))


def parse(
    parser: SearchParser, rtype: str, *pairs: tuple[str, str], strict: bool = False, **kw: object
) -> SearchQuery:
    return parser.parse(rtype, list(pairs), strict=strict, **kw)  # type: ignore[arg-type]


def only(query: SearchQuery) -> Filter:
    assert len(query.filters) == 1, query.filters
    return query.filters[0]


def param_filter(query: SearchQuery) -> ParamFilter:
    f = only(query)
    assert isinstance(f, ParamFilter)
    return f


def values(parser: SearchParser, rtype: str, name: str, value: str) -> Sequence[object]:
    return param_filter(parse(parser, rtype, (name, value))).values


# -- every parameter type -------------------------------------------------------------------------


def test_string(parser: SearchParser) -> None:
    f = param_filter(parse(parser, "Patient", ("name", "ＷＡＮＧ Wei")))
    assert f.param.code == "name"
    assert f.param.type == "string"
    assert f.modifier is None
    assert f.values == (StringValue("ＷＡＮＧ Wei", "wang wei"),)


@pytest.mark.parametrize("modifier", ["exact", "contains"])
def test_string_modifiers(parser: SearchParser, modifier: str) -> None:
    f = param_filter(parse(parser, "Patient", (f"family:{modifier}", "王")))
    assert f.modifier == modifier
    assert f.values == (StringValue("王", "王"),)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("male", TokenValue(None, "male")),
        ("http://loinc.org|8480-6", TokenValue("http://loinc.org", "8480-6")),
        ("|8480-6", TokenValue("", "8480-6")),
        ("http://loinc.org|", TokenValue("http://loinc.org", None)),
    ],
)
def test_token_forms(parser: SearchParser, value: str, expected: TokenValue) -> None:
    assert values(parser, "Observation", "code", value) == (expected,)


def test_token_on_booleans_and_identifiers(parser: SearchParser) -> None:
    assert values(parser, "Patient", "active", "true") == (TokenValue(None, "true"),)
    assert values(parser, "Patient", "identifier", "urn:oid:2.16.156.10011.1.3|110101198005120011") == (
        TokenValue("urn:oid:2.16.156.10011.1.3", "110101198005120011"),
    )


def test_token_not_and_text(parser: SearchParser) -> None:
    f = param_filter(parse(parser, "Observation", ("code:not", "http://loinc.org|8480-6")))
    assert f.modifier == "not"
    assert f.negated
    assert f.values == (TokenValue("http://loinc.org", "8480-6"),)
    f = param_filter(parse(parser, "Observation", ("code:text", "Blood Pressure")))
    assert f.modifier == "text"
    assert f.values == (StringValue("Blood Pressure", "blood pressure"),)


def test_token_of_type(parser: SearchParser) -> None:
    value = "http://terminology.hl7.org/CodeSystem/v2-0203|NI|110101198005120011"
    f = param_filter(parse(parser, "Patient", ("identifier:of-type", value)))
    assert f.modifier == "of-type"
    assert len(f.values) == 1
    token = f.values[0]
    assert isinstance(token, TokenValue)
    assert (token.system, token.code) == (
        "http://terminology.hl7.org/CodeSystem/v2-0203",
        "NI|110101198005120011",
    )


@pytest.mark.parametrize("modifier", ["in", "not-in", "above", "below"])
def test_terminology_token_modifiers_are_not_supported(parser: SearchParser, modifier: str) -> None:
    with pytest.raises(NotSupported) as info:
        parse(parser, "Observation", (f"code:{modifier}", "http://loinc.org/vs/x"))
    assert info.value.expression == (f"code:{modifier}",)
    assert info.value.http_status == 400


@pytest.mark.parametrize("prefix", ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"])
def test_date_prefixes(parser: SearchParser, prefix: str) -> None:
    (value,) = values(parser, "Patient", "birthdate", f"{prefix}2024-03")
    low, high = date_range("2024-03", ZONE)
    assert value == RangeValue(prefix, float(low), float(high), float(low))


def test_date_without_prefix_is_eq_and_read_in_the_platform_zone(parser: SearchParser) -> None:
    (value,) = values(parser, "Observation", "date", "2024-03-01T10:00:00")
    assert isinstance(value, RangeValue)
    assert value.prefix == "eq"
    assert (value.low, value.high) == tuple(float(x) for x in date_range("2024-03-01T02:00:00Z", ZONE))


def test_date_ap_widens_by_a_tenth_of_the_gap_to_now(parser: SearchParser) -> None:
    now = datetime(2024, 1, 1, tzinfo=ZONE)
    query = parse(parser, "Patient", ("birthdate", "ap2014-01-01"), now=now)
    (value,) = param_filter(query).values
    assert isinstance(value, RangeValue)
    assert value.prefix == "ap"
    low, high = date_range("2014-01-01", ZONE)
    margin = (now.timestamp() * 1_000_000 - low) * 0.1
    assert value.low == pytest.approx(low - margin)
    assert value.high == pytest.approx(high + margin)


@pytest.mark.parametrize(
    ("raw", "prefix", "number"),
    [("100", "eq", "100"), ("gt0.5", "gt", "0.5"), ("le1e2", "le", "1e2"), ("ne-3", "ne", "-3")],
)
def test_number(parser: SearchParser, raw: str, prefix: str, number: str) -> None:
    (value,) = values(parser, "RiskAssessment", "probability", raw)
    low, high = implicit_range(parse_decimal(number))
    assert value == RangeValue(prefix, low, high, float(parse_decimal(number)))


def test_number_ap_is_ten_percent(parser: SearchParser) -> None:
    (value,) = values(parser, "RiskAssessment", "probability", "ap100")
    assert isinstance(value, RangeValue)
    assert (value.prefix, value.low, value.high) == ("ap", pytest.approx(90), pytest.approx(110))


@pytest.mark.parametrize(
    ("raw", "prefix", "system", "unit"),
    [
        ("5.4", "eq", None, None),
        ("gt5.4|http://unitsofmeasure.org|mg", "gt", "http://unitsofmeasure.org", "mg"),
        ("le5.4||mg", "le", None, "mg"),
        ("5.4|http://unitsofmeasure.org|mm[Hg]", "eq", "http://unitsofmeasure.org", "mm[Hg]"),
    ],
)
def test_quantity(parser: SearchParser, raw: str, prefix: str, system: str | None, unit: str | None) -> None:
    (value,) = values(parser, "Observation", "value-quantity", raw)
    assert isinstance(value, QuantityValue)
    assert (value.prefix, value.value, value.system, value.unit) == (prefix, 5.4, system, unit)
    assert (value.low, value.high) == (pytest.approx(5.35), pytest.approx(5.45))


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("subject", "Patient/p1", ReferenceValue("Patient", "p1", None)),
        ("subject:Patient", "p1", ReferenceValue("Patient", "p1", None)),
        ("patient", "p1", ReferenceValue("Patient", "p1", None)),  # the parameter's only target
        ("encounter", "Encounter/e1", ReferenceValue("Encounter", "e1", None)),
        ("subject", f"{BASE}/Patient/p1", ReferenceValue("Patient", "p1", None)),  # on this server
        ("subject", f"{BASE}/Patient/p1/_history/2", ReferenceValue("Patient", "p1", None)),
    ],
)
def test_reference(parser: SearchParser, name: str, raw: str, expected: ReferenceValue) -> None:
    assert values(parser, "Observation", name, raw) == (expected,)


def test_reference_bare_id_with_several_targets_has_no_type(parser: SearchParser) -> None:
    (value,) = values(parser, "Observation", "subject", "p1")
    assert isinstance(value, ReferenceValue)
    assert (value.type, value.id) == (None, "p1")


def test_reference_on_another_server_keeps_its_url(parser: SearchParser) -> None:
    (value,) = values(parser, "Observation", "subject", "http://other.example.org/fhir/Patient/p1")
    assert isinstance(value, ReferenceValue)
    assert value.url == "http://other.example.org/fhir/Patient/p1"


def test_reference_identifier_modifier(parser: SearchParser) -> None:
    f = param_filter(parse(parser, "Observation", ("subject:identifier", "urn:oid:1.2|42")))
    assert f.modifier == "identifier"
    assert f.values == (TokenValue("urn:oid:1.2", "42"),)


def test_reference_type_modifier_must_agree_with_the_value(parser: SearchParser) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(parser, "Observation", ("subject:Patient", "Group/g1"))
    assert info.value.expression == ("subject:Patient",)


@pytest.mark.parametrize("modifier", [None, "below", "above"])
def test_uri(parser: SearchParser, modifier: str | None) -> None:
    name = "url" if modifier is None else f"url:{modifier}"
    f = param_filter(parse(parser, "Questionnaire", (name, "http://example.org/fhir/Questionnaire/phq-9")))
    assert f.modifier == modifier
    assert f.values == (UriValue("http://example.org/fhir/Questionnaire/phq-9"),)


@pytest.mark.parametrize(
    ("name", "value", "missing"),
    [
        ("name:missing", "true", True),
        ("birthdate:missing", "false", False),
        ("general-practitioner:missing", "true", True),
        ("_profile:missing", "false", False),
        ("identifier:missing", "true", True),
    ],
)
def test_missing(parser: SearchParser, name: str, value: str, missing: bool) -> None:
    f = param_filter(parse(parser, "Patient", (name, value)))
    assert f.missing is missing
    assert f.values == ()


@pytest.mark.parametrize(
    ("name", "kind"), [("_tag", "token"), ("_security", "token"), ("_profile", "uri"), ("_source", "uri")]
)
def test_resource_parameters(parser: SearchParser, name: str, kind: str) -> None:
    f = param_filter(parse(parser, "Patient", (name, "x")))
    assert f.param.code == name
    assert f.param.type == kind


def test_id_and_last_updated(parser: SearchParser) -> None:
    assert only(parse(parser, "Patient", ("_id", "a,b"))) == IdFilter("Patient", ("a", "b"))
    f = only(parse(parser, "Patient", ("_lastUpdated", "ge2024-01-01,lt2023")))
    assert isinstance(f, LastUpdatedFilter)
    assert [v.prefix for v in f.values] == ["ge", "lt"]
    assert f.values[0].low == date_range("2024-01-01", ZONE)[0]


# -- escaping, OR and AND -------------------------------------------------------------------------


def test_escaped_comma_is_part_of_the_value(parser: SearchParser) -> None:
    assert values(parser, "Patient", "name", r"Wang\, Wei") == (StringValue("Wang, Wei", "wang, wei"),)
    assert values(parser, "Patient", "name", r"a\,b,c") == (StringValue("a,b", "a,b"), StringValue("c", "c"))


def test_escaped_pipe_is_part_of_system_or_code(parser: SearchParser) -> None:
    assert values(parser, "Patient", "identifier", r"urn:a\|b|v") == (TokenValue("urn:a|b", "v"),)
    assert values(parser, "Patient", "identifier", r"urn:a|v\|1") == (TokenValue("urn:a", "v|1"),)
    assert values(parser, "Patient", "identifier", r"v\|1") == (TokenValue(None, "v|1"),)


def test_escaped_dollar_and_backslash(parser: SearchParser) -> None:
    assert values(parser, "Patient", "identifier", r"a\$b") == (TokenValue(None, "a$b"),)
    assert values(parser, "Patient", "family", "a\\\\b") == (StringValue("a\\b", "a\\b"),)
    (value,) = values(parser, "Observation", "code-value-string", r"http://loinc.org|8480-6$a\$b")
    assert isinstance(value, CompositeValue)
    assert value.last == StringValue("a$b", "a$b")


def test_comma_is_or_within_one_filter(parser: SearchParser) -> None:
    f = param_filter(parse(parser, "Patient", ("gender", "male,female")))
    assert f.values == (TokenValue(None, "male"), TokenValue(None, "female"))


def test_repeated_parameter_is_and(parser: SearchParser) -> None:
    query = parse(parser, "Patient", ("birthdate", "ge1980"), ("birthdate", "lt1990"), ("gender", "male"))
    assert len(query.filters) == 3
    assert [f.param.code for f in query.filters if isinstance(f, ParamFilter)] == [
        "birthdate",
        "birthdate",
        "gender",
    ]
    assert query.canonical == [("birthdate", "ge1980"), ("birthdate", "lt1990"), ("gender", "male")]


# -- chains and _has ------------------------------------------------------------------------------


def test_chain_with_type_modifier(parser: SearchParser) -> None:
    f = only(parse(parser, "Observation", ("subject:Patient.name", "王")))
    assert isinstance(f, ChainFilter)
    assert f.param.code == "subject"
    ((target, inner),) = f.targets
    assert target == "Patient"
    assert isinstance(inner, ParamFilter)
    assert inner.resource_type == "Patient"
    assert inner.param.code == "name"
    assert inner.values == (StringValue("王", "王"),)


def test_chain_without_modifier_goes_through_every_target_with_the_parameter(parser: SearchParser) -> None:
    f = only(parse(parser, "Observation", ("subject.name", "wang")))
    assert isinstance(f, ChainFilter)
    # Observation.subject targets Group, Device, Location and Patient; only Location and Patient have `name`.
    assert {t for t, _ in f.targets} == {"Location", "Patient"}


def test_two_level_chain(parser: SearchParser) -> None:
    f = only(parse(parser, "Observation", ("encounter.service-provider.name", "北京")))
    assert isinstance(f, ChainFilter)
    assert f.param.code == "encounter"
    targets = dict(f.targets)
    inner = targets["Encounter"]
    assert isinstance(inner, ChainFilter)
    assert inner.param.code == "service-provider"
    ((target, leaf),) = inner.targets
    assert target == "Organization"
    assert isinstance(leaf, ParamFilter)
    assert leaf.param.code == "name"


def test_chain_keeps_the_modifier_of_the_last_parameter(parser: SearchParser) -> None:
    f = only(parse(parser, "Observation", ("subject:Patient.gender:not", "male")))
    assert isinstance(f, ChainFilter)
    ((_, inner),) = f.targets
    assert isinstance(inner, ParamFilter)
    assert inner.modifier == "not"


def test_three_level_chain_is_refused(parser: SearchParser) -> None:
    with pytest.raises(NotSupported):
        parse(parser, "Observation", ("encounter.service-provider.partof.name", "北京"))


def test_chain_through_a_parameter_that_is_not_a_reference(parser: SearchParser) -> None:
    with pytest.raises(InvalidRequest, match="code"):
        parse(parser, "Observation", ("code.name", "x"))


def test_chain_to_an_unknown_parameter_is_an_unknown_parameter(parser: SearchParser) -> None:
    query = parse(parser, "Observation", ("subject.nonexistent", "x"))
    assert query.filters == []
    assert [n for n, _ in query.ignored] == ["subject.nonexistent"]
    with pytest.raises(UnknownSearchParameter):
        parse(parser, "Observation", ("subject.nonexistent", "x"), strict=True)


def test_has(parser: SearchParser) -> None:
    f = only(parse(parser, "Patient", ("_has:Observation:patient:code", "http://loinc.org|8480-6")))
    assert isinstance(f, HasFilter)
    assert (f.resource_type, f.source_type, f.param.code) == ("Patient", "Observation", "patient")
    assert isinstance(f.inner, ParamFilter)
    assert f.inner.resource_type == "Observation"
    assert f.inner.values == (TokenValue("http://loinc.org", "8480-6"),)


def test_nested_has(parser: SearchParser) -> None:
    f = only(parse(parser, "Patient", ("_has:Encounter:patient:_has:Condition:encounter:code", "I10")))
    assert isinstance(f, HasFilter)
    assert f.source_type == "Encounter"
    assert isinstance(f.inner, HasFilter)
    assert (f.inner.resource_type, f.inner.source_type, f.inner.param.code) == (
        "Encounter",
        "Condition",
        "encounter",
    )
    assert isinstance(f.inner.inner, ParamFilter)
    assert f.inner.inner.values == (TokenValue(None, "I10"),)


def test_has_three_levels_deep_is_refused(parser: SearchParser) -> None:
    name = "_has:Encounter:patient:_has:Observation:encounter:_has:Condition:encounter:code"
    with pytest.raises(NotSupported):
        parse(parser, "Patient", (name, "I10"))


@pytest.mark.parametrize(
    "name",
    [
        "_has:Observation:patient",  # no parameter
        "_has:Nonsense:patient:code",  # unknown type
        "_has:Observation:code:code",  # not a reference parameter
    ],
)
def test_malformed_has(parser: SearchParser, name: str) -> None:
    with pytest.raises(InvalidRequest):
        parse(parser, "Patient", (name, "x"))


# -- composites -----------------------------------------------------------------------------------


def test_composite(parser: SearchParser) -> None:
    f = param_filter(parse(parser, "Observation", ("code-value-quantity", "http://loinc.org|8480-6$gt140")))
    (value,) = f.values
    assert isinstance(value, CompositeValue)
    assert value.key == "http://loinc.org|8480-6"
    assert value.last_type == "quantity"
    assert isinstance(value.last, QuantityValue)
    assert (value.last.prefix, value.last.value) == ("gt", 140.0)


def test_composite_or_and_units(parser: SearchParser) -> None:
    raw = "8480-6$150|http://unitsofmeasure.org|mm[Hg],http://loinc.org|8462-4$lt90"
    keys = [
        (v.key, v.last.system, v.last.unit)
        for v in values(parser, "Observation", "combo-code-value-quantity", raw)
        if isinstance(v, CompositeValue) and isinstance(v.last, QuantityValue)
    ]
    assert keys == [
        ("8480-6", "http://unitsofmeasure.org", "mm[Hg]"),
        ("http://loinc.org|8462-4", None, None),
    ]


@pytest.mark.parametrize("raw", ["8480-6", "8480-6$1$2", "http://loinc.org|$gt140"])
def test_malformed_composite(parser: SearchParser, raw: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(parser, "Observation", ("code-value-quantity", raw))
    assert info.value.expression == ("code-value-quantity",)


def test_composite_with_a_leading_number_is_refused(parser: SearchParser) -> None:
    with pytest.raises(NotSupported) as info:
        parse(parser, "MolecularSequence", ("referenceseqid-variant-coordinate", "NC_000001.11$gt100$lt200"))
    assert info.value.expression == ("referenceseqid-variant-coordinate",)


# -- result parameters ----------------------------------------------------------------------------


def test_sort(parser: SearchParser) -> None:
    query = parse(parser, "Patient", ("_sort", "-birthdate,family,_id"), ("_sort", "-_lastUpdated"))
    assert [(k.code, k.descending) for k in query.sort] == [
        ("birthdate", True),
        ("family", False),
        ("_id", False),
        ("_lastUpdated", True),
    ]
    assert query.sort[2].param is None


@pytest.mark.parametrize("value", ["nonsense", "code-value-quantity", "-_content"])
def test_sort_by_what_cannot_be_sorted(parser: SearchParser, value: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(parser, "Observation", ("_sort", value))
    assert info.value.expression == ("_sort",)


@pytest.mark.parametrize(
    ("value", "count"), [("0", 0), ("1", 1), ("50", 50), ("1000", 1000), ("100000", 1000)]
)
def test_count_is_capped_at_the_maximum(parser: SearchParser, value: str, count: int) -> None:
    assert parse(parser, "Patient", ("_count", value)).count == count


def test_default_count(parser: SearchParser) -> None:
    assert parse(parser, "Patient").count == 20


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", ""])
def test_bad_count(parser: SearchParser, value: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(parser, "Patient", ("_count", value))
    assert info.value.expression == ("_count",)


def test_include_and_revinclude(parser: SearchParser) -> None:
    query = parse(
        parser,
        "Observation",
        ("_include", "Observation:subject:Patient"),
        ("_include", "Observation:*"),
        ("_revinclude", "Provenance:target"),
    )
    first, star = query.includes
    assert (first.source_type, [p.code for p in first.params], first.target_type, first.iterate) == (
        "Observation",
        ["subject"],
        "Patient",
        False,
    )
    codes = {p.code for p in star.params}
    assert {"subject", "encounter", "performer", "patient"} <= codes
    assert all(p.type == "reference" for p in star.params)
    (rev,) = query.revincludes
    assert (rev.source_type, [p.code for p in rev.params]) == ("Provenance", ["target"])


@pytest.mark.parametrize("name", ["_include:iterate", "_revinclude:iterate"])
def test_iterate(parser: SearchParser, name: str) -> None:
    value = "Encounter:service-provider" if name.startswith("_include") else "Observation:encounter"
    query = parse(parser, "Patient", (name, value))
    assert query.ignored == []
    specs = query.includes if name.startswith("_include") else query.revincludes
    assert len(specs) == 1
    assert specs[0].iterate
    assert specs[0].text == value
    assert (name, value) in query.canonical


@pytest.mark.parametrize(
    "value",
    ["Observation", "Observation:code", "Nonsense:subject", "Observation:subject:Nonsense", "a:b:c:d"],
)
def test_bad_include(parser: SearchParser, value: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(parser, "Observation", ("_include", value))
    assert info.value.expression == ("_include",)


@pytest.mark.parametrize("value", ["true", "false", "count", "data", "text"])
def test_summary(parser: SearchParser, value: str) -> None:
    assert parse(parser, "Patient", ("_summary", value)).summary == value


@pytest.mark.parametrize("value", ["none", "estimate", "accurate"])
def test_total(parser: SearchParser, value: str) -> None:
    assert parse(parser, "Patient", ("_total", value)).total == value


@pytest.mark.parametrize(("name", "value"), [("_summary", "maybe"), ("_total", "all")])
def test_bad_summary_and_total(parser: SearchParser, name: str, value: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(parser, "Patient", (name, value))
    assert info.value.expression == (name,)


def test_elements(parser: SearchParser) -> None:
    assert parse(parser, "Patient", ("_elements", "name, birthDate,gender")).elements == (
        "name",
        "birthDate",
        "gender",
    )


def test_format_and_pretty_are_not_filters(parser: SearchParser) -> None:
    query = parse(parser, "Patient", ("_format", "json"), ("_pretty", "true"), strict=True)
    assert query.filters == []
    assert query.ignored == []


# -- unknown parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["nonsense", "_nonsense", "_text", "_content", "_filter", "_has:Observation:patient:nonsense"]
)
def test_unknown_parameters_lenient_and_strict(parser: SearchParser, name: str) -> None:
    query = parse(parser, "Patient", (name, "x"), ("gender", "male"))
    assert [n for n, _ in query.ignored] == [name]
    assert len(query.filters) == 1
    assert query.canonical == [("gender", "male")]
    with pytest.raises(UnknownSearchParameter) as info:
        parse(parser, "Patient", (name, "x"), ("gender", "male"), strict=True)
    assert info.value.http_status == 400


def test_unsupported_result_parameter(parser: SearchParser) -> None:
    assert [n for n, _ in parse(parser, "Patient", ("_contained", "true")).ignored] == ["_contained"]
    with pytest.raises(UnknownSearchParameter):
        parse(parser, "Patient", ("_contained", "true"), strict=True)


def test_unknown_resource_type(parser: SearchParser) -> None:
    with pytest.raises(RhipError) as info:
        parse(parser, "Nonsense", ("name", "x"))
    assert info.value.http_status in (400, 404)


# -- invalid values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rtype", "name", "value"),
    [
        ("Patient", "birthdate", "2024-13-01"),
        ("Patient", "birthdate", "01/02/2024"),
        ("Patient", "birthdate", "gt"),
        ("Patient", "birthdate", "2024-03-01T10:00:00+25:00"),
        ("Patient", "_lastUpdated", "yesterday"),
        ("RiskAssessment", "probability", "abc"),
        ("RiskAssessment", "probability", "NaN"),
        ("RiskAssessment", "probability", "gt"),
        ("Observation", "value-quantity", "x|http://unitsofmeasure.org|mg"),
        ("Patient", "name", ""),
        ("Patient", "name", "a,"),
        ("Patient", "gender", ""),
        ("Patient", "birthdate", ""),
        ("Patient", "name:nonsense", "x"),
        ("Patient", "name:below", "x"),
        ("Patient", "birthdate:exact", "2024"),
        ("Patient", "gender:contains", "m"),
        ("Patient", "general-practitioner:exact", "pr1"),
        ("Patient", "general-practitioner:Nonsense", "pr1"),
        ("Patient", "_id:not", "p1"),
        ("Patient", "name:missing", "maybe"),
        ("Patient", "gender:missing", ""),
        ("Questionnaire", "url:contains", "http://x"),
    ],
)
def test_invalid_values_name_the_parameter(parser: SearchParser, rtype: str, name: str, value: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(parser, rtype, (name, value))
    assert info.value.expression == (name,)
    assert info.value.http_status == 400


def test_invalid_value_is_an_error_even_when_lenient(parser: SearchParser) -> None:
    with pytest.raises(InvalidRequest):
        parse(parser, "Patient", ("birthdate", "not-a-date"), strict=False)


# -- compartments ---------------------------------------------------------------------------------


def test_patient_compartment(parser: SearchParser) -> None:
    query = parse(parser, "Observation", ("code", "8480-6"), compartment=("Patient", "p1"))
    assert len(query.filters) == 2
    comp = query.filters[0]
    assert isinstance(comp, CompartmentFilter)
    assert (comp.target_type, comp.target_id) == ("Patient", "p1")
    # R4 CompartmentDefinition patient: Observation is in it by subject and performer.
    assert {p.code for p in comp.params} == {"subject", "performer"}


def test_type_outside_the_patient_compartment(parser: SearchParser) -> None:
    with pytest.raises(InvalidRequest):
        parse(parser, "Organization", compartment=("Patient", "p1"))


def test_other_compartments_are_not_supported(parser: SearchParser) -> None:
    with pytest.raises(NotSupported):
        parse(parser, "Observation", compartment=("Encounter", "e1"))
