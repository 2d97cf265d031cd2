"""HL7 v2 writer: every message type from the examples parses with python-hl7 and hl7apy and keeps its fields."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.parser import parse_message
from hl7apy.validation import Validator

from rhip.synth import hl7v2
from rhip.synth import systems as s
from rhip.synth.hl7v2_segments import escape, hl7_ts

from . import examples as ex

SENT = "2023-03-04T09:12:30+08:00"


def _adt(event: str, patient: dict[str, Any] = ex.PATIENT, **kwargs: Any) -> str:
    args: dict[str, Any] = {
        "control_id": f"ADT-{event}-1",
        "sent": SENT,
        "encounter": ex.ENCOUNTER,
        "practitioner": ex.PRACTITIONER,
        "conditions": [ex.CONDITION, ex.NOTIFIABLE_CONDITION],
    }
    if event == "A40":
        args = {"control_id": "ADT-A40-1", "sent": SENT, "prior_patient": _prior_patient()}
    args.update(kwargs)
    return hl7v2.adt(event, patient, ex.ORGANIZATION, **args)


def _oru(**kwargs: Any) -> str:
    args: dict[str, Any] = {
        "control_id": "ORU-1",
        "sent": SENT,
        "report": ex.DIAGNOSTIC_REPORT,
        "observations": [ex.LAB_RESULT, ex.BLOOD_PRESSURE],
        "encounter": ex.ENCOUNTER,
    }
    args.update(kwargs)
    return hl7v2.oru_r01(ex.PATIENT, ex.ORGANIZATION, **args)


def _vxu(**kwargs: Any) -> str:
    args: dict[str, Any] = {"control_id": "VXU-1", "sent": SENT, "immunizations": [ex.IMMUNIZATION]}
    args.update(kwargs)
    return hl7v2.vxu_v04(ex.PATIENT, ex.ORGANIZATION, **args)


def _prior_patient() -> dict[str, Any]:
    prior = copy.deepcopy(ex.PATIENT)
    prior["id"] = "prior-1"
    prior["identifier"] = [{"system": s.mrn_system(ex.ORG_CODE), "value": "M00099999"}]
    prior["name"] = [{"use": "official", "family": "王", "given": ["莉"]}]
    return prior


def _patient(**changes: Any) -> dict[str, Any]:
    patient = copy.deepcopy(ex.PATIENT)
    for key, value in changes.items():
        if value is None:
            patient.pop(key, None)
        else:
            patient[key] = value
    return patient


def _apy(message: str) -> Message:
    return parse_message(message, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)


def _find(element: Any, name: str) -> Any:
    """The first segment called ``name`` (hl7apy puts some segments in groups, named like ORU_R01_PATIENT)."""
    for child in element.children:
        if child.name == name:
            return child
        if "_" in child.name:
            found = _find(child, name)
            if found is not None:
                return found
    return None


def _pid3(message: hl7.Message) -> list[tuple[str, str, str]]:
    """(value, assigning authority universal id or namespace, type) of every PID-3 repeat."""
    reps = message.segment("PID")[3]
    out = []
    for i in range(1, len(reps) + 1):
        authority = message[f"PID.F3.R{i}.C4.S2"] or message[f"PID.F3.R{i}.C4.S1"]
        out.append((message[f"PID.F3.R{i}.C1"], authority, message[f"PID.F3.R{i}.C5"]))
    return out


ALL_MESSAGES = {
    "ADT^A01^ADT_A01": lambda: _adt("A01"),
    "ADT^A04^ADT_A01": lambda: _adt("A04"),
    "ADT^A08^ADT_A01": lambda: _adt("A08", encounter=None, conditions=()),
    "ADT^A03^ADT_A03": lambda: _adt("A03"),
    "ADT^A40^ADT_A39": lambda: _adt("A40"),
    "ORU^R01^ORU_R01": _oru,
    "VXU^V04^VXU_V04": _vxu,
}


# -- every message type: structure, header, patient ---------------------------------------------------


@pytest.mark.parametrize("message_type", ALL_MESSAGES)
def test_header_and_patient_parse_with_python_hl7(message_type: str) -> None:
    text = ALL_MESSAGES[message_type]()
    assert text.endswith("\r") and "\n" not in text
    m = hl7.parse(text)
    assert str(m.segment("MSH")[9]) == message_type
    assert m["MSH.F3"] in ("HIS", "LIS")
    assert (m["MSH.F4"], m["MSH.F5"], m["MSH.F6"]) == (ex.ORG_CODE, "RHIP", "RHIP")
    assert m["MSH.F7"] == "20230304091230+0800"
    assert m["MSH.F10"].endswith("-1")
    assert (m["MSH.F11"], m["MSH.F12"], m["MSH.F17"], m["MSH.F18"]) == ("P", "2.5.1", "CHN", "UNICODE UTF-8")
    assert _pid3(m) == [
        ("M00012345", ex.ORG_CODE, "MR"),
        ("510703198507120027", "2.16.156.10011.1.3", "NNCHN"),
        ("5107000000123456789", "2.16.156.10011.1.19", "HC"),
    ]
    assert (m["PID.F5.R1.C1"], m["PID.F5.R1.C2"]) == ("王", "丽")
    assert (m["PID.F7"], m["PID.F8"]) == ("19850712", "F")
    assert [m[f"PID.F11.R1.C{i}"] for i in (1, 3, 4, 6, 7, 8, 9)] == [
        "和平村3组15号", "绵阳市", "四川省", "CHN", "H", "涪城区", "510703"
    ]  # fmt: skip
    assert (m["PID.F13.R1.C1"], m["PID.F13.R1.C3"]) == ("13981612345", "CP")
    assert (m["PID.F16.R1.C1"], m["PID.F16.R1.C4"]) == ("M", "20")
    assert (m["PID.F22.R1.C1"], m["PID.F22.R1.C2"]) == ("01", "汉族")


@pytest.mark.parametrize("message_type", ALL_MESSAGES)
@pytest.mark.parametrize("version", ["2.5", "2.5.1"])
def test_every_message_parses_with_hl7apy(message_type: str, version: str) -> None:
    builder = ALL_MESSAGES[message_type]
    text = builder().replace("|2.5.1|", f"|{version}|", 1)
    m = _apy(text)
    assert m.name == message_type.rsplit("^", 1)[1]
    assert m.msh.msh_9.to_er7() == message_type
    pid = _find(m, "PID")
    assert [rep.cx_1.to_er7() for rep in pid.pid_3] == [
        "M00012345",
        "510703198507120027",
        "5107000000123456789",
    ]
    assert pid.pid_5.to_er7() == "王^丽"
    assert (pid.pid_7.to_er7(), pid.pid_8.to_er7()) == ("19850712", "F")


@pytest.mark.parametrize("message_type", ALL_MESSAGES)
def test_every_message_passes_hl7apy_strict_validation(message_type: str) -> None:
    m = parse_message(
        ALL_MESSAGES[message_type](), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True
    )
    assert Validator.validate(m)


# -- ADT ----------------------------------------------------------------------------------------------


def test_a01_visit_and_diagnoses() -> None:
    m = hl7.parse(_adt("A01"))
    assert (m["EVN.F1"], m["EVN.F2"], m["EVN.F6"], m["EVN.F7"]) == (
        "A01", "20230304091230+0800", "20230304091200+0800", ex.ORG_CODE
    )  # fmt: skip
    assert m["PV1.F2"] == "I"
    assert (m["PV1.F3.R1.C1"], m["PV1.F3.R1.C4"], m["PV1.F3.R1.C9"]) == ("D03", ex.ORG_CODE, "呼吸内科")
    assert [m[f"PV1.F7.R1.C{i}"] for i in (1, 2, 3, 9)] == ["0007", "李", "建国", ex.ORG_CODE]
    assert (m["PV1.F19.R1.C1"], m["PV1.F19.R1.C5"]) == ("MZ2023000123-0004", "VN")
    assert (m["PV1.F44"], m["PV1.F45"]) == ("20230304091200+0800", "")
    dg1 = m.segments("DG1")
    assert [str(d[3]) for d in dg1] == ["J18.9^肺炎^I10", "B08.4^手足口病^I10^4000^手足口病^99NIDRS"]
    assert [str(d[6]) for d in dg1] == ["A", "A"]
    assert str(dg1[0][16]) == "0007^李^建国^^^^^^510703-H001"


def test_a03_discharge_time_disposition_and_final_diagnosis() -> None:
    m = hl7.parse(_adt("A03", conditions=[ex.CONDITION]))
    assert m["EVN.F6"] == "20230311100000+0800"
    assert (m["PV1.F36"], m["PV1.F44"], m["PV1.F45"]) == ("1", "20230304091200+0800", "20230311100000+0800")
    assert m["DG1.F6"] == "F"


def test_a04_outpatient_class_and_a08_without_visit() -> None:
    encounter = copy.deepcopy(ex.ENCOUNTER)
    encounter["class"] = {"system": s.V3_ACT_CODE, "code": "AMB"}
    assert hl7.parse(_adt("A04", encounter=encounter))["PV1.F2"] == "O"
    encounter["class"]["code"] = "EMER"
    assert hl7.parse(_adt("A04", encounter=encounter))["PV1.F2"] == "E"
    a08 = _adt("A08", encounter=None, conditions=())
    assert "\rPV1|1|N\r" in a08
    assert "DG1" not in a08


def test_a40_merge_carries_the_prior_identifiers_in_mrg() -> None:
    text = _adt("A40")
    assert [line[:3] for line in text.split("\r") if line] == ["MSH", "EVN", "PID", "MRG"]
    m = hl7.parse(text)
    assert (m["MRG.F1.R1.C1"], m["MRG.F1.R1.C4"], m["MRG.F1.R1.C5"]) == ("M00099999", ex.ORG_CODE, "MR")
    assert (m["MRG.F7.R1.C1"], m["MRG.F7.R1.C2"]) == ("王", "莉")
    apy = _apy(text)
    assert _find(apy, "MRG").mrg_1.to_er7() == "M00099999^^^510703-H001^MR"


def test_unknown_event_and_merge_without_prior_patient_are_refused() -> None:
    with pytest.raises(ValueError, match="A02"):
        hl7v2.adt("A02", ex.PATIENT, ex.ORGANIZATION, control_id="1", sent=SENT)
    with pytest.raises(ValueError, match="prior_patient"):
        hl7v2.adt("A40", ex.PATIENT, ex.ORGANIZATION, control_id="1", sent=SENT)


# -- missing and unusual patient data -----------------------------------------------------------------


def test_patient_without_id_card_phone_or_address() -> None:
    patient = _patient(telecom=None, address=None, maritalStatus=None, extension=None)
    patient["identifier"] = [i for i in patient["identifier"] if i["system"] != s.ID_CARD]
    m = hl7.parse(_adt("A04", patient=patient))
    assert _pid3(m) == [
        ("M00012345", ex.ORG_CODE, "MR"),
        ("5107000000123456789", "2.16.156.10011.1.19", "HC"),
    ]
    assert (m["PID.F11"], m["PID.F13"], m["PID.F16"], m["PID.F22"]) == ("", "", "", "")
    assert (m["PID.F5.R1.C1"], m["PID.F7"]) == ("王", "19850712")


def test_old_15_digit_id_number_and_other_identifiers() -> None:
    patient = _patient()
    patient["identifier"] = [
        {"system": s.ID_CARD, "value": "510703850712002"},
        {"system": s.INSURANCE_CARD, "value": "YB123"},
        {"system": "urn:example:other", "value": "X1"},
    ]
    m = hl7.parse(_adt("A04", patient=patient))
    assert _pid3(m) == [
        ("510703850712002", "2.16.156.10011.1.3", "NNCHN"),
        ("YB123", "2.16.156.10011.1.15", "SN"),
    ]


def test_patient_without_identifiers_name_or_gender() -> None:
    patient = {"resourceType": "Patient", "id": "p-1", "name": [{"text": "无名氏"}], "deceasedBoolean": True}
    m = hl7.parse(hl7v2.adt("A08", patient, ex.ORGANIZATION, control_id="1", sent=SENT))
    assert _pid3(m) == [("p-1", ex.ORG_CODE, "PI")]
    assert (m["PID.F5"], m["PID.F7"], m["PID.F8"], m["PID.F30"]) == ("无名氏", "", "U", "Y")


def test_visit_without_practitioner_uses_the_participant_display() -> None:
    m = hl7.parse(_adt("A01", practitioner=None))
    assert str(m.segment("PV1")[7]) == "^李建国"
    assert "DG1|1||J18.9^肺炎^I10||20230304093000+0800|A\r" in _adt("A01", practitioner=None)


# -- ORU ----------------------------------------------------------------------------------------------


def test_oru_order_and_observations() -> None:
    text = _oru()
    assert [line[:3] for line in text.split("\r") if line] == [
        "MSH",
        "PID",
        "PV1",
        "ORC",
        "OBR",
        "OBX",
        "OBX",
        "OBX",
    ]
    m = hl7.parse(text)
    assert (m["ORC.F1"], m["ORC.F3.R1.C1"], m["ORC.F3.R1.C2"]) == ("RE", "JY2023030400017", ex.ORG_CODE)
    assert (m["OBR.F3.R1.C1"], m["OBR.F4.R1.C1"], m["OBR.F4.R1.C2"]) == (
        "JY2023030400017",
        "SHQX",
        "生化全项",
    )
    assert (m["OBR.F7"], m["OBR.F22"], m["OBR.F24"], m["OBR.F25"]) == (
        "20230304080000+0800", "20230304110200+0800", "LAB", "F"
    )  # fmt: skip
    glucose, systolic, diastolic = m.segments("OBX")
    assert [str(glucose[i]) for i in (1, 2, 5, 7, 8, 11, 14)] == [
        "1", "NM", "7.8", "3.9-6.1", "H", "F", "20230304080000+0800"
    ]  # fmt: skip
    assert str(glucose[3]) == "1558-6^空腹血糖^LN^GLU^葡萄糖^99LAB"
    assert str(glucose[6]) == "mmol/L^mmol/L^UCUM"
    assert [(str(o[3][0][0]), str(o[4]), str(o[5]), str(o[6][0][0])) for o in (systolic, diastolic)] == [
        ("8480-6", "2", "146", "mm[Hg]"),
        ("8462-4", "2", "92", "mm[Hg]"),
    ]


def test_oru_observations_read_back_with_hl7apy() -> None:
    m = _apy(_oru())
    order = m.oru_r01_patient_result.oru_r01_order_observation
    assert order.obr.obr_3.to_er7() == "JY2023030400017^510703-H001"
    values = [
        (o.obx.obx_3.obx_3_1.to_er7(), o.obx.obx_5.to_er7(), o.obx.obx_6.to_er7())
        for o in order.oru_r01_observation
    ]
    assert values == [
        ("1558-6", "7.8", "mmol/L^mmol/L^UCUM"),
        ("8480-6", "146", "mm[Hg]^mmHg^UCUM"),
        ("8462-4", "92", "mm[Hg]^mmHg^UCUM"),
    ]


def test_oru_value_kinds_and_ranges() -> None:
    base = {"resourceType": "Observation", "status": "preliminary", "code": {"text": "x"}}
    observations = [
        {**base, "valueQuantity": {"value": 3.5, "unit": "10^9/L"}, "referenceRange": [{"low": {"value": 4}}]},
        {**base, "valueQuantity": {"value": 1e-05, "comparator": "<", "unit": "g"}, "referenceRange": [{"high": {"value": 2}}]},
        {**base, "valueString": "阴性", "referenceRange": [{"text": "阴性"}]},
        {**base, "valueCodeableConcept": {"coding": [{"system": s.LOINC, "code": "LA6577-6", "display": "阴性"}]}},
        {**base, "valueInteger": 3},
        {**base, "valueBoolean": False},
        {**base, "valueDateTime": "2023-03-04T08:00:00Z"},
        {**base, "dataAbsentReason": {"text": "未检测"}, "status": "cancelled"},
    ]  # fmt: skip
    text = _oru(observations=observations, encounter=None)
    obx = hl7.parse(text).segments("OBX")
    assert [(str(o[2]), str(o[5]), str(o[6]), str(o[7]), str(o[11])) for o in obx] == [
        ("NM", "3.5", "10\\S\\9/L", ">4", "P"),
        ("SN", "<^0.00001", "g", "<2", "P"),
        ("ST", "阴性", "", "阴性", "P"),
        ("CWE", "LA6577-6^阴性^LN", "", "", "P"),
        ("NM", "3", "", "", "P"),
        ("ST", "N", "", "", "P"),
        ("TS", "20230304160000+0800", "", "", "P"),
        ("", "", "", "", "X"),
    ]
    assert hl7.parse(text)["OBX.F6"] == "10^9/L"  # the escaped unit reads back


# -- VXU ----------------------------------------------------------------------------------------------


def test_vxu_dose() -> None:
    text = _vxu(immunizations=[ex.IMMUNIZATION, {**ex.IMMUNIZATION, "id": "imm-2", "primarySource": False}])
    assert [line[:3] for line in text.split("\r") if line] == [
        "MSH", "PID", "ORC", "RXA", "RXR", "OBX", "ORC", "RXA", "RXR", "OBX"
    ]  # fmt: skip
    m = hl7.parse(text)
    rxa = m.segments("RXA")[0]
    assert [str(rxa[i]) for i in (1, 2, 3, 6, 15, 20, 21)] == [
        "0", "1", "20230605100000+0800", "0.5", "202301A17", "CP", "A"
    ]  # fmt: skip
    assert str(rxa[5]) == "0402^百白破疫苗^99NIP"
    assert str(rxa[7]) == "mL^mL^UCUM"
    assert str(rxa[9]) == "00^新接种记录^NIP001"
    assert str(m.segments("RXA")[1][9]) == "01^历史接种记录^NIP001"
    assert str(rxa[11]) == f"^^^{ex.ORG_CODE}"
    assert str(rxa[17]) == "^武汉生物制品研究所有限责任公司"
    assert str(m.segment("RXR")[1]) == "IM^肌内注射^HL70162"
    assert str(m.segment("RXR")[2]) == "LA^左上臂^HL70163"
    assert (m["OBX.F3.R1.C1"], m["OBX.F5"]) == ("30973-2", "2")
    order = _apy(text).vxu_v04_order[0]
    assert order.rxa.rxa_5.to_er7() == "0402^百白破疫苗^99NIP"
    assert order.rxa.rxa_5.ce_1.to_er7() == "0402"
    assert order.rxr.rxr_1.to_er7() == "IM^肌内注射^HL70162"


def test_vxu_not_done_and_uncoded_route() -> None:
    imm = {
        **ex.IMMUNIZATION,
        "status": "not-done",
        "statusReason": {"text": "家长拒绝"},
        "route": {"text": "滴眼"},
    }
    imm.pop("doseQuantity")
    imm.pop("site")
    m = hl7.parse(_vxu(immunizations=[imm]))
    rxa = m.segment("RXA")
    assert (str(rxa[6]), str(rxa[18]), str(rxa[20])) == ("999", "^家长拒绝", "NA")
    assert str(m.segment("RXR")) == "RXR|^滴眼"


# -- escaping, character sets, framing, times ---------------------------------------------------------


def test_delimiters_in_data_are_escaped() -> None:
    patient = _patient(name=[{"use": "official", "family": "欧^阳|", "given": ["&~\\"]}])
    patient["address"] = [{**patient["address"][0], "line": ["幸福路|1^2&3~4\\5号\n二单元"]}]
    text = _adt("A04", patient=patient)
    pid_line = next(line for line in text.split("\r") if line.startswith("PID"))
    assert "欧\\S\\阳\\F\\^\\T\\\\R\\\\E\\" in pid_line
    assert "幸福路\\F\\1\\S\\2\\T\\3\\R\\4\\E\\5号\\X0A\\二单元" in pid_line
    m = hl7.parse(text)
    assert (m["PID.F5.R1.C1"], m["PID.F5.R1.C2"]) == ("欧^阳|", "&~\\")
    assert m["PID.F11.R1.C1"] == "幸福路|1^2&3~4\\5号\n二单元"
    assert len(m.segment("PID")) == len(hl7.parse(_adt("A04")).segment("PID"))  # no field was split
    apy = _find(_apy(text), "PID")
    assert apy.pid_5.xpn_1.to_er7() == "欧\\S\\阳\\F\\"


def test_escape_helper() -> None:
    assert escape("a|b^c&d~e\\f\rg\nh") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X0D\\g\\X0A\\h"
    assert escape("王丽 M001") == "王丽 M001"


def test_mllp_framing_utf8() -> None:
    text = _adt("A01")
    framed = hl7v2.frame(text, "UNICODE UTF-8")
    assert framed[:1] == b"\x0b" and framed[-2:] == b"\x1c\r"
    assert framed[-3:-2] == b"\r"  # the last segment keeps its terminator
    assert b"\x0b" not in framed[1:] and b"\x1c" not in framed[:-2]
    assert framed[1:-2].decode("utf-8") == text


def test_gbk_without_msh18_round_trips() -> None:
    patient = _patient(name=[{"use": "official", "family": "刘", "given": ["瑋琝"]}])
    text = _adt("A04", patient=patient, charset_field=None)
    assert text.split("\r")[0].endswith("|CHN")  # MSH-18 left empty
    framed = hl7v2.frame(text, "gbk")
    assert "瑋".encode("gbk")[1:] == b"|" and "琝".encode("gbk")[1:] == b"\\"  # delimiters inside characters
    body = framed[1:-2]
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    m = hl7.parse(body.decode("gbk"))
    assert (m["PID.F5.R1.C1"], m["PID.F5.R1.C2"], m["PID.F11.R1.C3"]) == ("刘", "瑋琝", "绵阳市")
    assert m["MSH.F18"] == ""


def test_gb18030_encodes_what_gbk_cannot() -> None:
    patient = _patient(name=[{"use": "official", "family": "刘", "given": ["䶮"]}])
    text = _adt("A04", patient=patient, charset_field="GB 18030-2000")
    framed = hl7v2.frame(text, "GB 18030-2000")
    m = hl7.parse(framed[1:-2].decode("gb18030"))
    assert (m["MSH.F18"], m["PID.F5.R1.C2"]) == ("GB 18030-2000", "䶮")
    with pytest.raises(UnicodeEncodeError):
        hl7v2.frame(text, "gbk")
    assert b"?" in hl7v2.frame(text, "gbk", errors="replace")


def test_charset_codec() -> None:
    assert [hl7v2.charset_codec(c) for c in ("UNICODE UTF-8", "GB 18030-2000", "gbk")] == [
        "utf-8",
        "gb18030",
        "gbk",
    ]


def test_times() -> None:
    assert hl7_ts("2023-03-04T09:12:30+08:00") == "20230304091230+0800"
    assert hl7_ts("2023-03-04T01:12:30Z") == "20230304091230+0800"
    assert hl7_ts("2023-03-04T09:12:30.123+08:00") == "20230304091230+0800"
    assert hl7_ts("1985-07-12") == "19850712"
    assert hl7_ts("1985-07") == "198507"
    assert hl7_ts(datetime(2023, 3, 4, 1, 12, 30, tzinfo=UTC)) == "20230304091230+0800"
    assert hl7_ts(datetime(2023, 3, 4, 9, 12, 30)) == "20230304091230+0800"
    assert hl7_ts(None) == ""
    m = hl7.parse(
        hl7v2.adt(
            "A08", ex.PATIENT, ex.ORGANIZATION, control_id="1", sent=datetime(2023, 3, 4, 1, 0, tzinfo=UTC)
        )
    )
    assert m["MSH.F7"] == "20230304090000+0800"


def test_receiving_and_sending_parameters() -> None:
    text = _oru(
        sending_app="WINNING LIS", receiving_app="PLATFORM", receiving_facility="510700", processing_id="T"
    )
    m = hl7.parse(text)
    assert (m["MSH.F3"], m["MSH.F5"], m["MSH.F6"], m["MSH.F11"]) == ("WINNING LIS", "PLATFORM", "510700", "T")
