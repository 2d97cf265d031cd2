"""The v2 intake pipeline on a real platform: commit then AA, retransmissions, refusals, batches, replay."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from rhip.bootstrap.container import Platform
from rhip.exchange.hl7v2.charset import decode
from rhip.exchange.hl7v2.intake.errors import ReplayRefused
from rhip.exchange.hl7v2.intake.receipt import receipt_id
from rhip.exchange.hl7v2.mapping import MAPPERS
from rhip.exchange.hl7v2.message import Message, parse
from rhip.exchange.hl7v2.pipeline import Inbound, PipelineConfig, V2Pipeline
from rhip.exchange.rejects import RejectStore
from rhip.fhir.rest.messages import FhirRequest

from .conftest import RecordingMerger, history_count, search
from .messages import INSTITUTION, MRN_SYSTEM, a40, adt, encoded, msh


def err_of(ack: bytes) -> list[str]:
    text, _ = decode(ack)
    segment = parse(text).first("ERR")
    assert segment is not None
    return segment.fields


def one(pipeline: V2Pipeline, raw: bytes) -> Any:
    return pipeline.process([Inbound(raw)])[0]


def test_aa_after_commit_and_the_data_is_in_fhir(pipeline: V2Pipeline, platform: Platform) -> None:
    answer = one(pipeline, encoded(adt("C1", "M1", visit="MZ1")))
    assert answer.code == "AA" and not answer.duplicate and answer.control_id == "C1"
    assert b"MSA|AA|C1" in answer.ack
    patients = search(platform, "Patient", f"identifier={MRN_SYSTEM}|M1")
    assert len(patients) == 1 and patients[0]["name"][0]["family"] == "张"
    encounters = search(platform, "Encounter", f"identifier=urn:rhip:visit:{INSTITUTION}|MZ1")
    assert encounters[0]["subject"]["reference"] == f"Patient/{patients[0]['id']}"
    header = search(platform, "MessageHeader", f"_id={receipt_id(INSTITUTION, '卫宁HIS', 'C1')}")[0]
    assert header["eventCoding"]["code"] == "A04"
    assert f"Patient/{patients[0]['id']}" in [f["reference"] for f in header["focus"]]
    assert header["meta"]["source"] == f"urn:rhip:source:v2:{INSTITUTION}"


def test_a_retransmission_gets_the_same_ack_and_stores_nothing(
    pipeline: V2Pipeline, platform: Platform, rejects: RejectStore
) -> None:
    first = one(pipeline, encoded(adt("C1", "M1")))
    patient = search(platform, "Patient", f"identifier={MRN_SYSTEM}|M1")[0]
    versions = history_count(platform, f"Patient/{patient['id']}")
    again = one(pipeline, encoded(adt("C1", "M1")))
    assert again.duplicate and again.ack == first.ack
    assert history_count(platform, f"Patient/{patient['id']}") == versions
    assert len(search(platform, "MessageHeader")) == 1
    assert rejects.list() == []


def test_the_same_message_twice_in_one_batch(pipeline: V2Pipeline, platform: Platform) -> None:
    raw = encoded(adt("C7", "M7"))
    a, b = pipeline.process([Inbound(raw), Inbound(raw)])
    assert a.code == b.code == "AA" and a.ack == b.ack and b.duplicate
    assert len(search(platform, "Patient", f"identifier={MRN_SYSTEM}|M7")) == 1


def test_a_batch_of_several_patients_and_institutions(pipeline: V2Pipeline, platform: Platform) -> None:
    items = [Inbound(encoded(adt(f"B{i}", f"P{i}", id_card=""))) for i in range(6)]
    items.append(Inbound(encoded(adt("X1", "Q1").replace(INSTITUTION, "510703H01"))))
    answers = pipeline.process(items)
    assert [a.code for a in answers] == ["AA"] * 7
    assert len(search(platform, "Patient")) == 7
    # one Organization per institution although six messages created the sender's in one transaction
    codes = sorted(o["identifier"][0]["value"] for o in search(platform, "Organization"))
    assert codes == ["510703H01", INSTITUTION]


def test_messages_of_one_patient_in_one_batch_keep_their_order(
    pipeline: V2Pipeline, platform: Platform
) -> None:
    items = [
        Inbound(encoded(adt("S1", "M5", event="A01", visit="ZY5"))),
        Inbound(encoded(adt("S2", "M5", event="A03", visit="ZY5"))),
        Inbound(encoded(adt("S3", "M6"))),
    ]
    assert [a.code for a in pipeline.process(items)] == ["AA", "AA", "AA"]
    encounter = search(platform, "Encounter", f"identifier=urn:rhip:visit:{INSTITUTION}|ZY5")[0]
    assert encounter["status"] == "finished"


def corrupting(mappers: dict[str, Any], control_prefix: str) -> dict[str, Any]:
    """Mappers that give an invalid Patient for messages whose MSH-10 starts with ``control_prefix``."""

    def wrap(mapper: Any) -> Any:
        def mapped(message: Message, ctx: Any) -> Any:
            result = mapper(message, ctx)
            if message.control_id.startswith(control_prefix):
                for entry in result.bundle["entry"]:
                    if entry["resource"]["resourceType"] == "Patient":
                        entry["resource"]["gender"] = "neither"
            return result

        return mapped

    return {k: wrap(v) for k, v in mappers.items()}


def test_one_bad_message_does_not_block_the_batch(
    platform: Platform, rejects: RejectStore, merger: RecordingMerger
) -> None:
    pipeline = V2Pipeline(platform.fhir, rejects, mappers=corrupting(dict(MAPPERS), "BAD"), merger=merger)
    items = [
        Inbound(encoded(adt("G1", "M1"))),
        Inbound(encoded(adt("BAD1", "M2"))),
        Inbound(encoded(adt("G2", "M3"))),
    ]
    good1, bad, good2 = pipeline.process(items)
    assert (good1.code, bad.code, good2.code) == ("AA", "AE", "AA")
    err = err_of(bad.ack)
    assert err[2] == "PID^1"  # the Patient came from the PID segment
    assert err[3].startswith("102^")
    assert "RHIP-FHIR-0004" in err[8]
    assert len(search(platform, "Patient")) == 2
    kept = rejects.get(bad.reject_id)
    assert kept.raw == items[1].raw and kept.control_id == "BAD1" and kept.sender == INSTITUTION
    assert kept.ack == bad.ack and kept.reason_code == "RHIP-V2-0054"


def test_a_refused_message_sent_again_gets_the_stored_answer(
    pipeline: V2Pipeline, rejects: RejectStore
) -> None:
    raw = encoded(adt("E1", ""))  # no MRN
    first = one(pipeline, raw)
    assert first.code == "AE" and first.reject_id is not None
    again = one(pipeline, raw)
    assert again.duplicate and again.ack == first.ack and again.reject_id is None
    assert len(rejects.list()) == 1


def test_another_system_of_the_hospital_may_use_the_same_control_id(
    pipeline: V2Pipeline, platform: Platform, rejects: RejectStore
) -> None:
    # HIS and LIS number their messages each on their own: the LIS's 1001 is not the HIS's refused 1001.
    refused = one(pipeline, encoded(adt("1001", "")))
    assert refused.code == "AE"
    lis = encoded(adt("1001", "L-77").replace("|卫宁HIS|", "|LIS|", 1))
    accepted = one(pipeline, lis)
    assert accepted.code == "AA" and not accepted.duplicate
    assert len(search(platform, "Patient", f"identifier={MRN_SYSTEM}|L-77")) == 1
    [kept] = rejects.list()
    assert (kept.sender, kept.application, kept.control_id) == (INSTITUTION, "卫宁HIS", "1001")


@pytest.mark.parametrize(
    ("message_type", "hl7_code"),
    [("ZZZ^Z01", "200"), ("ADT^A99", "201"), ("QRY^A19", "200"), ("ORU^R99", "201")],
)
def test_unsupported_types_are_rejected(
    pipeline: V2Pipeline, rejects: RejectStore, message_type: str, hl7_code: str
) -> None:
    answer = one(pipeline, encoded(msh("U1", message_type) + "PID|1\r"))
    assert answer.code == "AR"
    err = err_of(answer.ack)
    assert err[2] == "MSH^1^9^1" and err[3].startswith(f"{hl7_code}^")
    assert rejects.get(answer.reject_id).reason_code == "RHIP-V2-0051"


def test_header_checks(pipeline: V2Pipeline) -> None:
    version = one(pipeline, encoded(adt("V1", "M1").replace("|2.5.1|", "|3.0|")))
    assert version.code == "AR" and err_of(version.ack)[3].startswith("203^")
    processing = one(pipeline, encoded(adt("V2", "M1").replace("|P|2.5.1", "|X|2.5.1")))
    assert processing.code == "AR" and err_of(processing.ack)[3].startswith("202^")
    facility = one(pipeline, encoded(adt("V3", "M1").replace(f"|{INSTITUTION}|RHIP|", "||RHIP|")))
    assert facility.code == "AE" and err_of(facility.ack)[2] == "MSH^1^4^1"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"hello",
        b"MSH|^~\\&|A\rPID|1",
        b"MSH|^~\\&|HIS|H1|R|R|2025||ADT^A04|M9|P|2.5\rbad segment\r",
    ],
)
def test_what_does_not_parse_gets_an_ar(pipeline: V2Pipeline, rejects: RejectStore, raw: bytes) -> None:
    answer = one(pipeline, raw)
    assert answer.code == "AR"
    assert answer.ack.startswith(b"MSH|^~\\&|") and b"\rMSA|AR|" in answer.ack
    assert rejects.get(answer.reject_id).raw == raw


def test_a_frame_problem_is_an_ar_naming_the_control_id(pipeline: V2Pipeline) -> None:
    answer = pipeline.process([Inbound(encoded(adt("F1", "M1"))[:200], frame_problem="oversized")])[0]
    assert answer.code == "AR" and b"MSA|AR|F1" in answer.ack
    assert answer.error_code == "RHIP-V2-0059"


def test_invalid_utf8_under_msh18_utf8_is_an_ar_and_kept(
    pipeline: V2Pipeline, platform: Platform, rejects: RejectStore
) -> None:
    # One bad byte in a UTF-8 message: read as GB 18030 it would swallow the "|" after it and be stored.
    raw = encoded(adt("U1", "M9", name="张^三")).replace("张".encode(), b"\xe5\xbc")
    answer = one(pipeline, raw)
    assert answer.code == "AR" and answer.error_code == "RHIP-V2-0002"
    assert b"MSA|AR|U1" in answer.ack  # the control id, read from the ASCII of the header
    err = err_of(answer.ack)
    assert err[2].startswith("MSH^1^18") and err[3].startswith("102^")
    assert "the bytes are not valid UTF-8 as MSH-18 says" in err[8]
    kept = rejects.get(answer.reject_id)
    assert kept.raw == raw and kept.control_id == "U1"
    assert search(platform, "Patient", f"identifier={MRN_SYSTEM}|M9") == []
    # a retransmission gets the same answer
    assert one(pipeline, raw).ack == answer.ack


def test_a_cut_off_or_oversized_frame_cannot_be_replayed(pipeline: V2Pipeline, rejects: RejectStore) -> None:
    for problem in ("oversized", "unterminated"):
        head = encoded(adt(f"P{problem[0]}", "M5"))[:-40]  # what was kept: whole segments, but not all
        refused = pipeline.process([Inbound(head, frame_problem=problem)])[0]
        assert refused.code == "AR" and refused.error_code == "RHIP-V2-0059"
        with pytest.raises(ReplayRefused, match="ask the sender to resend"):
            pipeline.replay(rejects.get(refused.reject_id), lambda i: rejects.resolve(i, status="replayed"))
        assert rejects.get(refused.reject_id).status == "open"


class FailingRejects(RejectStore):
    """A rejects store whose database is down for writing."""

    def record(self, **kwargs: Any) -> int:
        raise ConnectionError("database unavailable")


def test_a_refusal_that_cannot_be_kept_is_withheld(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = V2Pipeline(platform.fhir, FailingRejects(platform.db))
    with caplog.at_level(logging.INFO):
        answer = one(pipeline, encoded(adt("W1", "")))  # refused (no MRN), and kept nowhere
    assert answer.withheld and answer.reject_id is None
    assert answer.code == "AE" and answer.error_code == "RHIP-V2-0055"
    assert "send it again" in err_of(answer.ack)[8]
    assert "could not be kept in the rejects store" in caplog.text
    # a retransmission is processed again (nothing was stored that would answer it)
    assert one(pipeline, encoded(adt("W1", ""))).withheld


@pytest.mark.parametrize("with_msh18", [True, False])
def test_gbk_messages(pipeline: V2Pipeline, platform: Platform, with_msh18: bool) -> None:
    text = adt("K1", "M8", name="乗亅^乛亊", charset="GB 18030-2000" if with_msh18 else None)
    answer = one(pipeline, text.encode("gbk"))
    assert answer.code == "AA"
    patient = search(platform, "Patient", f"identifier={MRN_SYSTEM}|M8")[0]
    assert patient["name"][0]["family"] == "乗亅"
    assert "卫宁HIS".encode("gbk") in answer.ack  # the answer is in the sender's charset


def test_a_mapper_crash_is_an_ae_207_logged_without_personal_data(
    platform: Platform, rejects: RejectStore, caplog: pytest.LogCaptureFixture
) -> None:
    def crash(message: Message, ctx: Any) -> Any:
        raise KeyError(message.first("PID").get(5))  # type: ignore[union-attr]

    pipeline = V2Pipeline(platform.fhir, rejects, mappers={**MAPPERS, "ADT^A04": crash})
    with caplog.at_level(logging.INFO):
        answer = one(pipeline, encoded(adt("I1", "M1", name="欧阳^娜娜")))
    assert answer.code == "AE" and err_of(answer.ack)[3].startswith("207^")
    assert rejects.get(answer.reject_id).reason_code == "RHIP-V2-0056"
    assert "欧阳" not in caplog.text and "娜娜" not in caplog.text
    assert "v2 mapping failed" in caplog.text


def test_a40_merges_after_commit(pipeline: V2Pipeline, platform: Platform, merger: RecordingMerger) -> None:
    assert one(pipeline, encoded(adt("A1", "M1"))).code == "AA"
    assert one(pipeline, encoded(adt("A2", "M2", id_card=""))).code == "AA"
    answer = one(pipeline, encoded(a40("A3", "M1", "M2")))
    assert answer.code == "AA"
    surviving = search(platform, "Patient", f"identifier={MRN_SYSTEM}|M1")[0]["id"]
    obsolete = search(platform, "Patient", f"identifier={MRN_SYSTEM}|M2")[0]
    assert merger.calls == [(surviving, obsolete["id"], f"v2:{INSTITUTION}")]
    assert obsolete["active"] is False


def test_an_a40_without_a_merger_is_an_ae(platform: Platform, rejects: RejectStore) -> None:
    pipeline = V2Pipeline(platform.fhir, rejects, PipelineConfig())
    answer = one(pipeline, encoded(a40("A3", "M1", "M2")))
    assert answer.code == "AE" and answer.error_code == "RHIP-V2-0057"
    # the data is stored (its receipt too), yet a retransmission gets the AE it got, not an AA
    again = one(pipeline, encoded(a40("A3", "M1", "M2")))
    assert again.duplicate and again.ack == answer.ack


def test_replay_after_a_fix(platform: Platform, rejects: RejectStore) -> None:
    broken = V2Pipeline(platform.fhir, rejects, mappers=corrupting(dict(MAPPERS), "R"))
    refused = one(broken, encoded(adt("R1", "M4")))
    assert refused.code == "AE"
    fixed = V2Pipeline(platform.fhir, rejects)
    # a plain retransmission still gets the stored answer; a replay runs the message again
    assert one(fixed, encoded(adt("R1", "M4"))).ack == refused.ack
    replayed = fixed.replay(rejects.get(refused.reject_id), lambda i: rejects.resolve(i, status="replayed"))
    assert replayed.code == "AA" and replayed.reject_id == refused.reject_id
    assert rejects.get(refused.reject_id).status == "replayed"
    assert len(search(platform, "Patient", f"identifier={MRN_SYSTEM}|M4")) == 1
    # now accepted: a retransmission gets the AA
    assert one(fixed, encoded(adt("R1", "M4"))).ack == replayed.ack
    assert rejects.list() == []


def test_a_replay_that_fails_again_leaves_the_reject_open(pipeline: V2Pipeline, rejects: RejectStore) -> None:
    refused = one(pipeline, encoded(adt("E2", "")))
    again = pipeline.replay(rejects.get(refused.reject_id), lambda i: rejects.resolve(i, status="replayed"))
    assert again.code == "AE" and again.reject_id is None
    assert [r.id for r in rejects.list()] == [refused.reject_id]


ORU = (
    "MSH|^~\\&|LIS|510725H01|RHIP|RHIP|20250311161400+0800||ORU^R01^ORU_R01|{cid}|P|2.5.1|||||CHN|UNICODE UTF-8\r"
    "PID|1||M1^^^510725H01^MR||张^三||19501228|M\r"
    "PV1|1|O|||||||||||||||||MZ1^^^510725H01^VN\r"
    "ORC|RE||JY1^510725H01\r"
    "OBR|1||JY1^510725H01|CBC^血常规^99LAB|||20250308134800+0800|||||||||||||||20250311161400+0800||LAB|F\r"
    "OBX|1|NM|6690-2^白细胞^LN||9.15|10*9/L^10\\S\\9/L^UCUM|3.5-9.5|N|||F|||20250308134800+0800\r"
    "OBX|2|NM|718-7^血红蛋白^LN||{hgb}|g/L^g/L^UCUM|115-175|N|||F|||20250308134800+0800\r"
)


def test_results_are_stored_once(pipeline: V2Pipeline, platform: Platform) -> None:
    assert one(pipeline, encoded(adt("O0", "M1", visit="MZ1"))).code == "AA"
    first = one(pipeline, ORU.format(cid="O1", hgb="135").encode())
    assert first.code == "AA", first.reason
    observations = search(platform, "Observation")
    assert sorted(o["valueQuantity"]["value"] for o in observations) == [9.15, 135]
    report = search(platform, "DiagnosticReport")[0]
    assert len(report["result"]) == 2
    # the same results under a new control id change nothing and add nothing
    assert one(pipeline, ORU.format(cid="O2", hgb="135").encode()).code == "AA"
    assert len(search(platform, "Observation")) == 2


def test_a_hospitals_local_codes_get_the_standard_code_of_its_registered_dictionary(
    pipeline: V2Pipeline, platform: Platform
) -> None:
    """本地字典对照 on the v2 door: OBR-4 ``CBC^血常规^99LAB`` is the hospital's table ``lab``."""
    local = f"urn:rhip:cs:local:{INSTITUTION}:lab"
    concept_map = {
        "resourceType": "ConceptMap",
        "url": f"urn:rhip:cm:{INSTITUTION}:lab",
        "version": "1",
        "status": "active",
        "group": [
            {
                "source": local,
                "target": "http://loinc.org",
                "element": [{"code": "CBC", "target": [{"code": "58410-2", "equivalence": "equivalent"}]}],
            }
        ],
    }
    stored = platform.fhir.handle(
        FhirRequest(
            "POST",
            "ConceptMap",
            headers={"content-type": "application/fhir+json"},
            body=orjson.dumps(concept_map),
        )
    )
    assert stored.status == 201, stored.body
    assert one(pipeline, encoded(adt("L0", "M1", visit="MZ1"))).code == "AA"
    assert one(pipeline, ORU.format(cid="L1", hgb="135").encode()).code == "AA"
    (report,) = search(platform, "DiagnosticReport")
    codings = [(c["system"], c["code"]) for c in report["code"]["coding"]]
    assert codings == [(local, "CBC"), ("http://loinc.org", "58410-2")]
    assert search(platform, "DiagnosticReport", "code=http://loinc.org|58410-2")  # found by the standard code


def test_unchanged_entries_are_left_out_and_changes_still_arrive(
    pipeline: V2Pipeline, platform: Platform
) -> None:
    assert one(pipeline, encoded(adt("U1", "M1", visit="MZ1"))).code == "AA"
    patient = search(platform, "Patient", f"identifier={MRN_SYSTEM}|M1")[0]
    assert one(pipeline, encoded(adt("U2", "M1", visit="MZ2"))).code == "AA"
    assert history_count(platform, f"Patient/{patient['id']}") == 1  # the same demographics: no new version
    assert pipeline.known.left_out >= 2  # the Patient and the Organization
    encounter = search(platform, "Encounter", f"identifier=urn:rhip:visit:{INSTITUTION}|MZ2")[0]
    assert encounter["subject"]["reference"] == f"Patient/{patient['id']}"
    header = search(platform, "MessageHeader", f"_id={receipt_id(INSTITUTION, '卫宁HIS', 'U2')}")[0]
    assert f"Patient/{patient['id']}" in [f["reference"] for f in header["focus"]]
    # changed elsewhere (another door): the next message's Patient is written again
    changed = {**patient, "gender": "female"}
    changed.pop("meta")
    put = platform.fhir.handle(
        FhirRequest(
            "PUT",
            f"Patient/{patient['id']}",
            body=orjson.dumps(changed),
            headers={"content-type": "application/fhir+json"},
        )
    )
    assert put.status == 200, put.body
    assert one(pipeline, encoded(adt("U3", "M1", visit="MZ3"))).code == "AA"
    assert history_count(platform, f"Patient/{patient['id']}") == 3
    assert search(platform, "Patient", f"identifier={MRN_SYSTEM}|M1")[0]["gender"] == "male"
    # a changed message is written too
    assert one(pipeline, encoded(adt("U4", "M1", visit="MZ4", name="张^四"))).code == "AA"
    assert search(platform, "Patient", f"identifier={MRN_SYSTEM}|M1")[0]["name"][0]["given"] == ["四"]
