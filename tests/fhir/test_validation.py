"""Write-time validation of FHIR R4 resources: official examples pass, each kind of error is reported."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhip.core.errors import Issue
from rhip.fhir.definitions import structure
from rhip.fhir.invariants import INVARIANTS, describe
from rhip.fhir.validation import MAX_DEPTH, Validator, validator
from rhip.fhir.valuesets import RequiredValueSets, required_valuesets

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "r4-examples"
GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
LOINC = "http://loinc.org"
EXT_URL = "http://example.org/ext"


def issues(resource: Any, **kwargs: Any) -> list[tuple[str, str]]:
    """(code, first expression) of every issue."""
    return [
        (i.code, i.expression[0] if i.expression else "") for i in validator().validate(resource, **kwargs)
    ]


def assert_issue(resource: Any, code: str, path: str) -> None:
    found = issues(resource)
    assert (code, path) in found, found


def assert_valid(resource: Any) -> None:
    found = validator().validate(resource)
    assert found == [], [(i.code, i.expression, i.diagnostics) for i in found]


def patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **elements}


def observation(**elements: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
    }
    return {**base, **elements}


def condition(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": {"reference": "Patient/1"}, **elements}


def concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


# -- official examples ---------------------------------------------------------------------------


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))


def test_the_example_folder_is_a_broad_sample() -> None:
    kinds = {p.name.split("-", 1)[0] for p in EXAMPLE_FILES}
    assert len(EXAMPLE_FILES) >= 80
    assert {"Patient", "Observation", "Bundle", "Questionnaire", "Composition", "Consent"} <= kinds
    assert sum(p.stat().st_size for p in EXAMPLES.iterdir()) < 1_000_000


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_official_example_is_valid(path: Path) -> None:
    resource = json.loads(path.read_text("utf-8"))
    assert_valid(resource)
    assert validator().validate(resource, expected_type=resource["resourceType"]) == []


# -- resource type -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [[1, 2], "Patient", None, 3, True])
def test_a_resource_must_be_an_object(value: Any) -> None:
    assert issues(value) == [("structure", "")]


def test_resource_type_must_be_known_and_concrete() -> None:
    assert issues({"id": "x"}) == [("required", "")]
    assert issues({"resourceType": "Foo"}) == [("invalid", "")]
    assert issues({"resourceType": "DomainResource"}) == [("invalid", "")]
    assert issues({"resourceType": 7}) == [("structure", "")]


def test_resource_type_must_match_the_expected_type() -> None:
    assert issues(patient(), expected_type="Observation") == [("invalid", "Patient")]
    assert issues(patient(), expected_type="Patient") == []


def test_resource_type_is_not_an_element_of_datatypes() -> None:
    assert_issue(patient(maritalStatus={"resourceType": "Patient", "text": "x"}), "structure", "Patient.maritalStatus.resourceType")  # fmt: skip  # noqa: E501


# -- elements and cardinality --------------------------------------------------------------------


def test_unknown_element() -> None:
    found = validator().validate(patient(foo=1))
    assert [(i.code, i.expression) for i in found] == [("structure", ("Patient.foo",))]
    assert "Unknown element 'foo'" in found[0].diagnostics
    assert found[0].severity == "error" and found[0].rhip_code == "RHIP-FHIR-0004"


def test_unknown_element_deep_inside() -> None:
    assert_issue(
        patient(name=[{"family": "Chalmers", "nickname": "Jim"}]), "structure", "Patient.name[0].nickname"
    )


def test_parts_of_datatypes_have_no_modifier_extensions() -> None:
    ext = [{"url": EXT_URL, "valueBoolean": True}]
    task = {"resourceType": "Task", "status": "draft", "intent": "order"}
    timing = {"url": EXT_URL, "valueTiming": {"repeat": {"count": 1, "modifierExtension": ext}}}
    assert issues({**task, "extension": [timing]}) == [("structure", "Task.extension[0].valueTiming.repeat.modifierExtension")]  # fmt: skip
    assert_valid(patient(contact=[{"name": {"text": "Mum"}, "modifierExtension": ext}]))


def test_fhir_comments_are_not_r4() -> None:
    assert_issue(patient(fhir_comments=["note"]), "structure", "Patient.fhir_comments")


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        (patient(active="true"), "Patient.active"),
        (patient(birthDate=19740101), "Patient.birthDate"),
        (patient(name=[{"family": 42}]), "Patient.name[0].family"),
        (observation(valueQuantity={"value": "72"}), "Observation.valueQuantity.value"),
        (patient(multipleBirthInteger=True), "Patient.multipleBirthInteger"),
        (patient(maritalStatus="married"), "Patient.maritalStatus"),
    ],
)
def test_wrong_json_type(resource: dict[str, Any], path: str) -> None:
    assert_issue(resource, "structure", path)


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        (patient(gender=["male"]), "Patient.gender"),
        (observation(code=[{"text": "heart rate"}]), "Observation.code"),
        (patient(name={"family": "Chalmers"}), "Patient.name"),
        (patient(name=[{"given": "Peter"}]), "Patient.name[0].given"),
        (patient(name=[]), "Patient.name"),
        (patient(name=[{"given": []}]), "Patient.name[0].given"),
    ],
)
def test_arrays_exactly_where_the_element_repeats(resource: dict[str, Any], path: str) -> None:
    assert_issue(resource, "structure", path)


@pytest.mark.parametrize(
    ("resource", "code", "path"),
    [
        (patient(name=[{"family": ""}]), "value", "Patient.name[0].family"),
        (patient(name=[{"family": " \t "}]), "value", "Patient.name[0].family"),
        (patient(gender=""), "value", "Patient.gender"),
        (patient(maritalStatus={}), "structure", "Patient.maritalStatus"),
        (patient(maritalStatus={"id": "a1"}), "structure", "Patient.maritalStatus"),
        (patient(gender=None), "structure", "Patient.gender"),
        (patient(name=[None]), "structure", "Patient.name[0]"),
        (patient(name=[{"given": ["Peter", None]}]), "structure", "Patient.name[0].given[1]"),
        (patient(contained=[None]), "structure", "Patient.contained[0]"),
    ],
)
def test_empty_and_null_values(resource: dict[str, Any], code: str, path: str) -> None:
    assert_issue(resource, code, path)


def test_missing_required_elements() -> None:
    found = issues({"resourceType": "Observation", "subject": {"reference": "Patient/1"}})
    assert sorted(found) == [("required", "Observation.code"), ("required", "Observation.status")]
    assert_issue(observation(component=[{"valueString": "x"}]), "required", "Observation.component[0].code")
    assert_issue(patient(extension=[{"valueString": "x"}]), "required", "Patient.extension[0].url")


def test_a_primitive_with_only_an_extension_is_present() -> None:
    ext = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}  # fmt: skip
    resource = observation(_status=ext)
    del resource["status"]
    assert_valid(resource)


def test_two_variants_of_a_choice_element() -> None:
    found = issues(observation(valueString="72", valueQuantity={"value": 72}))
    assert ("structure", "Observation.value") in found
    assert_issue(
        patient(deceasedBoolean=False, _deceasedDateTime={"id": "x"}), "structure", "Patient.deceased"
    )


def test_a_choice_value_and_its_extension_are_one_variant() -> None:
    assert_valid(observation(valueString="high", _valueString={"id": "v1"}))


# -- primitive values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        (patient(birthDate="1974-13-25"), "Patient.birthDate"),
        (patient(birthDate="2021-02-29"), "Patient.birthDate"),
        (patient(birthDate="1974-04-31"), "Patient.birthDate"),
        (patient(birthDate="25/12/1974"), "Patient.birthDate"),
        (patient(birthDate="1974-12-25T10:00:00Z"), "Patient.birthDate"),
        (patient(deceasedDateTime="2020-01-01T10:00:00"), "Patient.deceasedDateTime"),
        (patient(deceasedDateTime="2020-01-01T10:00Z"), "Patient.deceasedDateTime"),
        (observation(issued="2020-01-01"), "Observation.issued"),
        (observation(valueQuantity={"value": float("nan")}), "Observation.valueQuantity.value"),
        (observation(valueInteger=1.5), "Observation.valueInteger"),
        (observation(valueInteger=2**31), "Observation.valueInteger"),
        (observation(valueTime="25:00:00"), "Observation.valueTime"),
        (patient(multipleBirthInteger=-(2**31) - 1), "Patient.multipleBirthInteger"),
        ({"resourceType": "Patient", "id": "has space"}, "Patient.id"),
        ({"resourceType": "Patient", "id": "x" * 65}, "Patient.id"),
        (patient(gender="fe  male"), "Patient.gender"),
        (patient(implicitRules="http://example.org/has space"), "Patient.implicitRules"),
        (patient(photo=[{"contentType": "image/png", "data": "not*base64"}]), "Patient.photo[0].data"),
        (patient(text={"status": "generated", "div": "<p>not a div</p>"}), "Patient.text.div"),
    ],
)
def test_bad_primitive_values(resource: dict[str, Any], path: str) -> None:
    assert_issue(resource, "value", path)


@pytest.mark.parametrize(
    ("repeat", "code"),
    [
        ({"count": 0}, "value"),
        ({"count": 1.5}, "value"),
        ({"count": "2"}, "structure"),
        ({"offset": -1}, "value"),
    ],
)
def test_positive_and_unsigned_integers(repeat: dict[str, Any], code: str) -> None:
    task = {"resourceType": "Task", "status": "draft", "intent": "order",
            "extension": [{"url": "http://example.org/ext", "valueTiming": {"repeat": {**repeat, "when": ["MORN"]}}}]}  # fmt: skip
    path = f"Task.extension[0].valueTiming.repeat.{next(iter(repeat))}"
    assert (code, path) in issues(task)


@pytest.mark.parametrize(
    "resource",
    [
        patient(birthDate="2020-02-29"),
        patient(birthDate="1974"),
        patient(birthDate="1974-12"),
        patient(deceasedDateTime="2020-01-01T10:00:00.123+08:00"),
        patient(deceasedDateTime="2016-12-31T23:59:60Z"),
        patient(name=[{"family": "欧阳", "given": ["娜\u3000娜"], "text": "欧阳 娜娜\n"}]),
        patient(multipleBirthInteger=2**31 - 1),
        patient(photo=[{"contentType": "image/png", "data": "iVBORw0K\nGgoAAAAN"}]),
        observation(valueQuantity={"value": 1e-3}, issued="2020-01-01T10:00:00Z"),
        patient(gender="female", _gender={"id": "g"}),
    ],
)
def test_good_primitive_values(resource: dict[str, Any]) -> None:
    assert_valid(resource)


@pytest.mark.parametrize(
    "div",
    [
        "<div xmlns='http://www.w3.org/1999/xhtml'><script>alert(1)</script></div>",
        "<div xmlns='http://www.w3.org/1999/xhtml'><IMG SRC='x' OnError='alert(1)'/></div>",
        "<div xmlns='http://www.w3.org/1999/xhtml'><a href='JavaScript:alert(1)'>x</a></div>",
        "<div xmlns='http://www.w3.org/1999/xhtml'><iframe src='http://x'></iframe></div>",
        "<div xmlns='http://www.w3.org/1999/xhtml'><form action='x'></form></div>",
    ],
)
def test_narrative_screen(div: str) -> None:
    assert_issue(patient(text={"status": "generated", "div": div}), "value", "Patient.text.div")


def test_narrative_text_may_mention_onset() -> None:
    div = "<div xmlns='http://www.w3.org/1999/xhtml'><p>Date of onset= 2020; based on = history</p></div>"
    assert_valid(patient(text={"status": "generated", "div": div}))


# -- primitive extensions (_name) ----------------------------------------------------------------

EXT = {"extension": [{"url": EXT_URL, "valueString": "x"}]}


def test_primitive_extension_alone() -> None:
    assert_valid(patient(_birthDate=EXT))
    assert_issue(patient(_birthDate={"id": "b"}), "structure", "Patient.birthDate")
    assert_issue(patient(_birthDate={}), "structure", "Patient.birthDate")
    assert_issue(patient(_birthDate="1974"), "structure", "Patient.birthDate")
    assert_issue(
        patient(_birthDate={"extension": [{"url": "http://x"}]}),
        "invariant",
        "Patient.birthDate.extension[0]",
    )
    assert_issue(patient(_birthDate={"foo": 1}), "structure", "Patient.birthDate.foo")


def test_primitive_array_extensions_are_aligned() -> None:
    assert_valid(patient(name=[{"given": ["Peter", None], "_given": [None, EXT]}]))
    assert_valid(patient(name=[{"_given": [EXT, EXT]}]))
    assert_issue(patient(name=[{"given": ["Peter", None], "_given": [None, None]}]), "structure", "Patient.name[0].given[1]")  # fmt: skip
    assert_issue(
        patient(name=[{"given": ["Peter"], "_given": [None, EXT]}]), "structure", "Patient.name[0].given"
    )
    assert_issue(patient(name=[{"_given": [None]}]), "structure", "Patient.name[0].given[0]")
    assert_issue(patient(name=[{"given": ["A"], "_given": EXT}]), "structure", "Patient.name[0].given")
    assert_issue(patient(name=[{"given": ["A"], "_given": ["x"]}]), "structure", "Patient.name[0].given[0]")


def test_underscore_is_only_for_primitives() -> None:
    assert_issue(patient(_maritalStatus=EXT), "structure", "Patient.maritalStatus")
    assert_issue(patient(_unknown=EXT), "structure", "Patient._unknown")


# -- required bindings ---------------------------------------------------------------------------


def test_code_not_in_required_value_set() -> None:
    (issue,) = validator().validate(patient(gender="xx"))
    assert (issue.code, issue.expression) == ("code-invalid", ("Patient.gender",))
    assert issue.diagnostics == f"Element 'gender' has value 'xx', not in required value set {GENDER_VS}"


def test_codes_in_repeating_and_nested_elements() -> None:
    assert_issue(patient(contact=[{"gender": "mail", "name": {"text": "x"}}]), "code-invalid", "Patient.contact[0].gender")  # fmt: skip
    assert_issue(patient(name=[{"use": "nick"}]), "code-invalid", "Patient.name[0].use")
    assert_issue(observation(status="done"), "code-invalid", "Observation.status")


@pytest.mark.parametrize(
    ("clinical_status", "valid"),
    [
        (concept(CLINICAL, "active"), True),
        (
            {
                "coding": [
                    {"system": "http://example.org", "code": "x"},
                    {"system": CLINICAL, "code": "active"},
                ]
            },
            True,
        ),
        ({"coding": [{"code": "active"}]}, True),
        (concept(CLINICAL, "cured"), False),
        (concept("http://snomed.info/sct", "active"), False),
        ({"text": "active"}, False),
    ],
)
def test_codeable_concept_required_binding(clinical_status: dict[str, Any], valid: bool) -> None:
    found = issues(condition(clinicalStatus=clinical_status))
    assert found == ([] if valid else [("code-invalid", "Condition.clinicalStatus")])


def test_value_sets_that_cannot_be_enumerated_are_not_checked() -> None:
    assert_valid(patient(photo=[{"contentType": "application/x-anything"}]))


def test_required_value_sets_lookup() -> None:
    vs = required_valuesets()
    assert vs.contains(GENDER_VS, None, "male") is True
    assert vs.contains(GENDER_VS, "http://hl7.org/fhir/administrative-gender", "female") is True
    assert vs.contains(GENDER_VS, "http://example.org", "female") is False
    assert vs.contains("http://hl7.org/fhir/ValueSet/mimetypes", None, "text/plain") is None
    assert vs.contains("http://example.org/unknown", None, "x") is None
    assert vs.codes(GENDER_VS) == frozenset({"male", "female", "other", "unknown"})
    assert vs.codes("http://hl7.org/fhir/ValueSet/mimetypes") is None
    small = RequiredValueSets({"expansions": {"urn:vs": [["urn:cs", "a"]]}, "notEnumerable": ["urn:x"]})
    assert small.contains("urn:vs", "urn:cs", "a") is True
    assert small.systems("urn:vs") == frozenset({"urn:cs"})
    assert small.codes("urn:x") is None


# -- nested and contained resources --------------------------------------------------------------


def test_errors_in_bundle_entries_have_the_entry_path() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": patient(gender="male")},
            {"resource": patient(gender="xx", name=[{"family": 1}])},
            {"resource": {"resourceType": "Nope"}},
            {"resource": "Patient/1"},
        ],
    }
    found = issues(bundle)
    assert ("code-invalid", "Bundle.entry[1].resource.gender") in found
    assert ("structure", "Bundle.entry[1].resource.name[0].family") in found
    assert ("invalid", "Bundle.entry[2].resource") in found
    assert ("structure", "Bundle.entry[3].resource") in found


def test_parameters_resources_are_validated() -> None:
    params = {"resourceType": "Parameters", "parameter": [{"name": "p", "resource": patient(gender="xx")}]}
    assert_issue(params, "code-invalid", "Parameters.parameter[0].resource.gender")


def test_contained_resources() -> None:
    org = {"resourceType": "Organization", "id": "org1", "name": "Clinic"}
    assert_valid(patient(contained=[org], managingOrganization={"reference": "#org1"}))
    no_id = {"resourceType": "Organization", "name": "Clinic"}
    assert_issue(patient(contained=[no_id]), "required", "Patient.contained[0]")
    nested = {**org, "contained": [{"resourceType": "Organization", "id": "o2", "name": "x"}]}
    assert_issue(patient(contained=[nested]), "invariant", "Patient.contained[0].contained")
    versioned = {**org, "meta": {"versionId": "3"}}
    assert_issue(patient(contained=[versioned]), "invariant", "Patient.contained[0].meta")
    updated = {**org, "meta": {"lastUpdated": "2024-01-01T00:00:00Z"}}
    assert_issue(patient(contained=[updated]), "invariant", "Patient.contained[0].meta")
    labelled = {**org, "meta": {"security": [{"system": "http://x", "code": "R"}]}}
    assert_issue(patient(contained=[labelled]), "invariant", "Patient.contained[0].meta.security")
    assert_issue(patient(contained=[{**org, "name": ""}]), "value", "Patient.contained[0].name")


def test_contained_resources_must_be_referenced() -> None:
    org = {"resourceType": "Organization", "id": "org1", "name": "Clinic"}
    found = validator().validate(patient(contained=[org]))
    assert [(i.code, i.expression) for i in found] == [("invariant", ("Patient",))]
    assert found[0].diagnostics.startswith("Constraint dom-3 failed")
    assert_valid(patient(contained=[org], generalPractitioner=[{"reference": "#org1"}]))


def test_contained_resources_may_refer_to_each_other_and_the_container() -> None:
    med = {"resourceType": "Medication", "id": "m1", "manufacturer": {"reference": "#o1"}}
    org = {"resourceType": "Organization", "id": "o1", "name": "Maker", "partOf": {"reference": "#"}}
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/1"},
        "contained": [med, org],
        "medicationReference": {"reference": "#m1"},
    }
    assert_valid(request)


# -- invariants ----------------------------------------------------------------------------------

NESTED = {"url": "a", "valueCode": "b"}
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
INVARIANT_CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    # key, valid resource, invalid resource, path of the failing object
    (
        "ext-1",
        patient(extension=[{"url": EXT_URL, "valueBoolean": True}]),
        patient(extension=[{"url": EXT_URL, "valueBoolean": True, "extension": [NESTED]}]),
        "Patient.extension[0]",
    ),
    (
        "ref-1",
        patient(
            contained=[{"resourceType": "Organization", "id": "o", "name": "x"}],
            managingOrganization={"reference": "#o"},
        ),
        patient(managingOrganization={"reference": "#o"}),
        "Patient.managingOrganization",
    ),
    (
        "per-1",
        patient(name=[{"period": {"start": "2020-01-01", "end": "2020-01-01T10:00:00+08:00"}}]),
        patient(name=[{"period": {"start": "2021-01-01", "end": "2020-12-31"}}]),
        "Patient.name[0].period",
    ),
    (
        "qty-3",
        observation(valueQuantity={"value": 1, "system": "http://unitsofmeasure.org", "code": "mg"}),
        observation(valueQuantity={"value": 1, "code": "mg"}),
        "Observation.valueQuantity",
    ),
    (
        "cpt-2",
        patient(telecom=[{"system": "phone", "value": "555"}]),
        patient(telecom=[{"value": "555"}]),
        "Patient.telecom[0]",
    ),
    (
        "obs-6",
        observation(dataAbsentReason={"text": "lost"}),
        observation(dataAbsentReason={"text": "lost"}, valueString="x"),
        "Observation",
    ),
    (
        "obs-7",
        observation(valueString="x", component=[{"code": concept(LOINC, "8480-6"), "valueInteger": 1}]),
        observation(valueString="x", component=[{"code": concept(LOINC, "8867-4"), "valueInteger": 1}]),
        "Observation",
    ),
    (
        "con-4",
        condition(clinicalStatus=concept(CLINICAL, "resolved"), abatementString="2020"),
        condition(clinicalStatus=concept(CLINICAL, "active"), abatementString="2020"),
        "Condition",
    ),
    (
        "con-5",
        condition(verificationStatus=concept(VERIFICATION, "entered-in-error")),
        condition(
            verificationStatus=concept(VERIFICATION, "entered-in-error"),
            clinicalStatus=concept(CLINICAL, "active"),
        ),
        "Condition",
    ),
    (
        "pat-1",
        patient(contact=[{"name": {"text": "Mum"}}]),
        patient(contact=[{"gender": "female"}]),
        "Patient.contact[0]",
    ),
    (
        "tim-1",
        {
            "resourceType": "Task",
            "status": "draft",
            "intent": "order",
            "extension": [{"url": EXT_URL, "valueTiming": {"repeat": {"duration": 1, "durationUnit": "h"}}}],
        },
        {
            "resourceType": "Task",
            "status": "draft",
            "intent": "order",
            "extension": [{"url": EXT_URL, "valueTiming": {"repeat": {"duration": 1}}}],
        },
        "Task.extension[0].valueTiming.repeat",
    ),
    (
        "rng-2",
        observation(valueRange={"low": {"value": 1}, "high": {"value": 2}}),
        observation(valueRange={"low": {"value": 3}, "high": {"value": 2}}),
        "Observation.valueRange",
    ),
    (
        "mdd-1",
        {
            "resourceType": "MedicationDispense",
            "status": "completed",
            "medicationCodeableConcept": {"text": "x"},
            "whenPrepared": "2020-01-01T10:00:00Z",
            "whenHandedOver": "2020-01-01T18:00:00+08:00",
        },
        {
            "resourceType": "MedicationDispense",
            "status": "completed",
            "medicationCodeableConcept": {"text": "x"},
            "whenPrepared": "2020-01-02",
            "whenHandedOver": "2020-01-01",
        },
        "MedicationDispense",
    ),
    (
        "bdl-3",
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": patient(), "request": {"method": "POST", "url": "Patient"}}],
        },
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": patient()}]},
        "Bundle.entry[0]",
    ),
    (
        "bdl-1",
        {"resourceType": "Bundle", "type": "searchset", "total": 0},
        {"resourceType": "Bundle", "type": "collection", "total": 0},
        "Bundle",
    ),
    (
        "ait-1",
        {
            "resourceType": "AllergyIntolerance",
            "patient": {"reference": "Patient/1"},
            "clinicalStatus": concept(ALLERGY_CLINICAL, "active"),
        },
        {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/1"}},
        "AllergyIntolerance",
    ),
    (
        "org-1",
        {"resourceType": "Organization", "name": "Clinic"},
        {"resourceType": "Organization", "active": True},
        "Organization",
    ),
    (
        "att-1",
        patient(photo=[{"contentType": "image/png", "data": "AAAA"}]),
        patient(photo=[{"data": "AAAA"}]),
        "Patient.photo[0]",
    ),
]


@pytest.mark.parametrize(
    ("key", "valid", "invalid", "path"), INVARIANT_CASES, ids=[c[0] for c in INVARIANT_CASES]
)
def test_invariant(key: str, valid: dict[str, Any], invalid: dict[str, Any], path: str) -> None:
    assert_valid(valid)
    found = validator().validate(invalid)
    assert [(i.code, i.expression) for i in found] == [("invariant", (path,))]
    assert found[0].diagnostics == f"Constraint {key} failed: {describe(key)}"


def test_every_invariant_is_documented() -> None:
    for key, check in INVARIANTS.items():
        assert (check.__doc__ or "").startswith(f"{key}: "), key
        assert describe(key)


def test_period_comparison_respects_offsets_and_precision() -> None:
    def period(start: str, end: str) -> dict[str, Any]:
        return patient(name=[{"period": {"start": start, "end": end}}])

    assert_valid(period("2020-01-01T10:00:00+08:00", "2020-01-01T03:00:00Z"))
    assert_valid(period("2020-06-15", "2020-06"))
    assert_valid(period("2020-01-01T23:00:00+08:00", "2020-01-01"))
    assert issues(period("2020-01-01T12:00:00+08:00", "2020-01-01T03:00:00Z")) == [("invariant", "Patient.name[0].period")]  # fmt: skip
    assert issues(period("2021", "2020")) == [("invariant", "Patient.name[0].period")]


# -- privacy of diagnostics ----------------------------------------------------------------------

SECRET = "Zhang Wei 110101199003078888"


@pytest.mark.parametrize(
    "resource",
    [
        patient(name=[{"family": [SECRET]}]),
        patient(name=[{"family": {"text": SECRET}}]),
        patient(name=[{"given": SECRET}]),
        patient(identifier=[{"value": SECRET + "\u0000 ", "system": "urn:x y " + SECRET}]),
        patient(maritalStatus=SECRET),
        patient(secretName=SECRET),
        {"resourceType": "Patient", "id": SECRET},
        patient(text={"status": "generated", "div": SECRET}),
        patient(name=[{"family": "x" * (1024 * 1024 + 1)}]),
        patient(gender=SECRET),
        patient(gender="110101199003078888"),
        patient(name=[{"use": SECRET + "  "}]),
        patient(
            contained=[{"resourceType": "Patient", "name": [{"family": 7, "text": SECRET}], "gender": SECRET}]
        ),
    ],
)
def test_diagnostics_never_echo_free_text(resource: dict[str, Any]) -> None:
    found = validator().validate(resource)
    assert found
    for issue in found:
        assert "Zhang" not in issue.diagnostics and "1101011990" not in issue.diagnostics
        assert "xxxxxxxx" not in issue.diagnostics


# -- limits and robustness -----------------------------------------------------------------------


def test_max_issues() -> None:
    resource = patient(**{f"unknown{i}": i for i in range(50)})
    assert len(Validator(structure(), required_valuesets(), max_issues=5).validate(resource)) == 5
    assert len(validator().validate(resource)) == 50


def test_deep_nesting_is_reported_not_crashed() -> None:
    ext: dict[str, Any] = {"url": EXT_URL, "valueString": "leaf"}
    for _ in range(MAX_DEPTH * 3):
        ext = {"url": EXT_URL, "extension": [ext]}
    found = issues(patient(extension=[ext]))
    assert [code for code, _ in found] == ["structure"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
RESOURCE_TYPES = ["Patient", "Observation", "Bundle", "Condition", "Questionnaire", "Extension", "Parameters"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_never_raises_on_arbitrary_json(value: Any) -> None:
    found = validator().validate(value)
    assert isinstance(found, list) and all(isinstance(i, Issue) for i in found)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(RESOURCE_TYPES), st.dictionaries(st.text(max_size=10), JSON, max_size=5))
def test_never_raises_on_typed_garbage(rtype: str, body: dict[str, Any]) -> None:
    found = validator().validate({**body, "resourceType": rtype})
    assert all(isinstance(i, Issue) for i in found)


def _walk_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            paths += _walk_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            paths += _walk_paths(value, (*prefix, i))
    return paths


SAMPLES = [json.loads(p.read_text("utf-8")) for p in EXAMPLE_FILES[::9]]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.data())
def test_never_raises_on_mutated_examples(example: dict[str, Any], data: st.DataObject) -> None:
    resource = copy.deepcopy(example)
    path = data.draw(st.sampled_from(_walk_paths(resource)[1:]))
    target = resource
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = data.draw(JSON)
    found = validator().validate(resource)
    assert all(isinstance(i, Issue) for i in found)
