"""WS/T 500 clinical records: C0001 病历概要, C0002 门（急）诊病历, C0032 住院病案首页, C0053 出院小结."""

from __future__ import annotations

from rhip.documents.cda.body import findings, read_body
from rhip.documents.cda.context import Extraction, Section
from rhip.documents.cda.diagnoses import clinical_status
from rhip.documents.cda.statements import by_element, element_id, related, statement, value_of
from rhip.documents.cda.values import string
from rhip.documents.cda.xmlpath import local

DISCHARGE_STATE = "DE06.00.193.00"  # 出院情况
KEY_DRUG = "DE08.50.022.00"  # 关键药物名称
KEY_DRUG_USE = "DE06.00.136.00"  # 关键药物用法
# History sections of 病历概要 and 个人基本健康信息登记 (their entries are described in words).
HISTORY_SECTIONS = frozenset(("11348-0", "56836-0", "11369-6", "29762-2", "49033-4", "10157-6", "48765-2"))
SOCIAL_SECTIONS = frozenset(("29762-2", "49033-4", "10157-6"))  # 个人史, 月经史, 家族史
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def outpatient_record(x: Extraction) -> None:
    """C0002: diagnoses, vital signs, results and prescriptions of the visit (the complaint goes to the Encounter)."""
    read_body(x)


def front_page(x: Extraction) -> None:
    """C0032: discharge diagnoses and vital signs (disposition, stay and route go to the Encounter)."""
    read_body(x)


def discharge_summary(x: Extraction) -> None:
    """C0053: discharge diagnoses with the discharge state of the principal one, results and discharge drugs."""
    body = read_body(x)
    for section in x.sections():
        for entry in section.entries():
            obs = statement(entry)
            if obs is None or element_id(obs) != DISCHARGE_STATE:
                continue
            status = clinical_status(string(value_of(obs)))
            same_section = [c for c, _, s in body.conditions if s.element is section.element]
            if status and same_section:
                same_section[0]["clinicalStatus"] = {"coding": [{"system": _CLINICAL, "code": status}]}


def summary(x: Extraction) -> None:
    """C0001: blood type, past diagnoses, procedures, allergies, key drugs and the histories in words."""
    read_body(x)
    history_findings(x)
    key_drugs(x)


def history_findings(x: Extraction) -> None:
    """The histories in words (既往史, 个人史, 家族史 …) as Observations coded with their data element."""
    sections = [s for s in x.sections() if s.code in HISTORY_SECTIONS]
    findings(x, [s for s in sections if s.code in SOCIAL_SECTIONS], kind="social-history")
    findings(x, [s for s in sections if s.code not in SOCIAL_SECTIONS])


def key_drugs(x: Extraction, sections: list[Section] | None = None) -> None:
    """关键药物 (DE08.50.022.00, a drug named in words with its use) as MedicationStatement."""
    for section in sections if sections is not None else list(x.sections()):
        for entry in section.entries():
            obs = statement(entry)
            if obs is None or local(obs) != "observation" or element_id(obs) != KEY_DRUG:
                continue
            name = string(value_of(obs))
            if not name:
                continue
            use = by_element(related(obs), KEY_DRUG_USE)
            dosage = string(value_of(use)) if use is not None else ""
            x.add(
                x.new(
                    "MedicationStatement",
                    entry,
                    status="unknown",
                    medicationCodeableConcept={"text": name},
                    dosage=[{"text": dosage}] if dosage else None,
                )
            )
