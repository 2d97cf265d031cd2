"""The small built-in sample region: a few institutions and residents with several years of care.

Deterministic for a seed, and realistic enough to exercise every index and query: valid 18-digit ID
numbers (GB 11643 check digit), common surnames so that names repeat, GB/T 2260 district codes of
Chengdu, ICD-10 diagnoses, LOINC vital signs and labs, medications and immunizations. The synthetic
region of ``rhip synth`` (a later capability) replaces it for demos; the ingest benchmark and the tests
keep using it because it is small and fast to make.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from rhip.synth.idcard import check_character
from rhip.synth.rng import uuid4
from rhip.synth.systems import HEALTH_RECORD, ICD10, ID_CARD, LOINC, UCUM

SHANGHAI = timezone(timedelta(hours=8))
USCC = "urn:oid:2.16.156.10011.1.20"  # 统一社会信用代码 namespace used by the sample institutions

# GB/T 2260 codes of Chengdu districts (成都市).
DISTRICTS = [
    ("510104", "锦江区"),
    ("510105", "青羊区"),
    ("510106", "金牛区"),
    ("510107", "武侯区"),
    ("510108", "成华区"),
    ("510112", "龙泉驿区"),
    ("510113", "青白江区"),
    ("510114", "新都区"),
]
# The most frequent Chinese surnames with pinyin (frequency-weighted so that names repeat, as they do).
SURNAMES = [
    ("王", "Wang", 7.1),
    ("李", "Li", 7.0),
    ("张", "Zhang", 6.8),
    ("刘", "Liu", 5.4),
    ("陈", "Chen", 4.5),
    ("杨", "Yang", 3.1),
    ("黄", "Huang", 2.2),
    ("赵", "Zhao", 2.0),
    ("吴", "Wu", 1.8),
    ("周", "Zhou", 1.7),
    ("徐", "Xu", 1.3),
    ("孙", "Sun", 1.2),
    ("马", "Ma", 1.1),
    ("朱", "Zhu", 1.0),
    ("胡", "Hu", 0.9),
    ("郭", "Guo", 0.9),
    ("何", "He", 0.8),
    ("罗", "Luo", 0.7),
    ("曾", "Zeng", 0.5),
    ("单", "Shan", 0.1),
]
GIVEN = [
    ("伟", "Wei"),
    ("芳", "Fang"),
    ("娜", "Na"),
    ("敏", "Min"),
    ("静", "Jing"),
    ("丽", "Li"),
    ("强", "Qiang"),
    ("磊", "Lei"),
    ("军", "Jun"),
    ("洋", "Yang"),
    ("勇", "Yong"),
    ("艳", "Yan"),
    ("杰", "Jie"),
    ("涛", "Tao"),
    ("明", "Ming"),
    ("超", "Chao"),
    ("秀英", "Xiuying"),
    ("桂英", "Guiying"),
    ("建华", "Jianhua"),
    ("晓燕", "Xiaoyan"),
]
CONDITIONS = [
    ("I10", "原发性高血压", 0.25),
    ("E11.9", "2型糖尿病", 0.10),
    ("J06.9", "急性上呼吸道感染", 0.35),
    ("J18.9", "肺炎", 0.05),
    ("K52.9", "胃肠炎", 0.10),
    ("S09.9", "头部损伤", 0.03),
    ("I63.9", "脑梗死", 0.02),
    ("C34.9", "肺恶性肿瘤", 0.01),
    ("J45.9", "哮喘", 0.04),
    ("M54.5", "腰痛", 0.05),
]
LABS = [
    ("1558-6", "空腹血糖", "mmol/L", 5.6, 1.2),
    ("4548-4", "糖化血红蛋白", "%", 6.0, 0.9),
    ("718-7", "血红蛋白", "g/L", 135.0, 15.0),
    ("2093-3", "总胆固醇", "mmol/L", 4.8, 0.9),
    ("6690-2", "白细胞计数", "10*9/L", 6.5, 1.8),
]
DRUGS = [
    ("阿司匹林肠溶片", "100mg"),
    ("硝苯地平缓释片", "20mg"),
    ("二甲双胍片", "500mg"),
    ("阿莫西林胶囊", "250mg"),
    ("氨氯地平片", "5mg"),
    ("布洛芬缓释胶囊", "300mg"),
]
VACCINES = [
    ("01", "乙肝疫苗"),
    ("02", "卡介苗"),
    ("03", "脊灰灭活疫苗"),
    ("04", "百白破疫苗"),
    ("06", "麻腮风疫苗"),
]


@dataclass
class Institution:
    """A hospital or health centre of the sample."""

    id: str
    name: str
    uscc: str
    district: str


class SampleRegion:
    """Generates the sample deterministically from ``seed``."""

    def __init__(self, seed: int = 7, start: date = date(2021, 1, 1), years: int = 4) -> None:
        self.seed = seed
        self.start = start
        self.years = years
        rng = random.Random(seed)
        names = [
            "成都市第一人民医院",
            "四川省人民医院",
            "成都市第三人民医院",
            "锦江区人民医院",
            "武侯区社区卫生服务中心",
            "新都区中医医院",
        ]
        self.institutions = [
            Institution(
                f"org-{i + 1}",
                name,
                f"12510000{rng.randrange(10**9, 10**10)}",
                DISTRICTS[i % len(DISTRICTS)][0],
            )
            for i, name in enumerate(names)
        ]

    # -- shared resources -----------------------------------------------------------------------
    def organizations(self) -> list[dict[str, Any]]:
        """The sample's institutions as Organizations."""
        return [
            {
                "resourceType": "Organization",
                "id": inst.id,
                "identifier": [{"system": USCC, "value": inst.uscc}],
                "active": True,
                "type": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                "code": "prov",
                            }
                        ]
                    }
                ],
                "name": inst.name,
                "address": [
                    {"city": "成都市", "district": dict(DISTRICTS)[inst.district], "postalCode": "610000"}
                ],
            }
            for inst in self.institutions
        ]

    def practitioners(self) -> list[dict[str, Any]]:
        """Two doctors per institution."""
        rng = random.Random(self.seed + 1)
        out = []
        for inst in self.institutions:
            for k in range(2):
                family, family_py, _ = rng.choice(SURNAMES)
                given, given_py = rng.choice(GIVEN)
                out.append(
                    {
                        "resourceType": "Practitioner",
                        "id": f"{inst.id}-dr-{k + 1}",
                        "identifier": [
                            {
                                "system": "urn:oid:2.16.156.10011.1.4",
                                "value": f"1105100{rng.randrange(10**8, 10**9)}",
                            }
                        ],
                        "active": True,
                        "name": [
                            {"text": family + given, "family": family, "given": [given]},
                            {
                                "use": "usual",
                                "text": f"{family_py} {given_py}",
                                "family": family_py,
                                "given": [given_py],
                            },
                        ],
                    }
                )
        return out

    # -- residents ------------------------------------------------------------------------------
    def patient_record(self, index: int) -> list[dict[str, Any]]:
        """Resident ``index`` and the care they received, with final ids and relative references."""
        rng = random.Random(self.seed * 1_000_003 + index)
        pid = uuid4(rng)
        sex = rng.choice(("male", "female"))
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 80))
        district, district_name = rng.choice(DISTRICTS)
        seq = f"{rng.randrange(0, 500):03d}"
        seq = seq[:2] + str((int(seq[2]) // 2) * 2 + (1 if sex == "male" else 0))
        first17 = f"{district}{birth:%Y%m%d}{seq}"
        id_number = first17 + check_character(first17)
        weights = [w for _, _, w in SURNAMES]
        family, family_py, _ = rng.choices(SURNAMES, weights)[0]
        given, given_py = rng.choice(GIVEN)
        home = rng.choice(self.institutions)
        patient = {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [
                {"system": ID_CARD, "value": id_number},
                {"system": HEALTH_RECORD, "value": f"{district}{index:010d}"},
                {"system": f"urn:rhip:mrn:{home.id}", "value": f"MRN{rng.randrange(10**6, 10**7)}"},
            ],
            "active": True,
            "name": [
                {"use": "official", "text": family + given, "family": family, "given": [given]},
                {"use": "usual", "text": f"{family_py} {given_py}", "family": family_py, "given": [given_py]},
            ],
            "telecom": [
                {
                    "system": "phone",
                    "value": f"1{rng.choice('3589')}{rng.randrange(10**8, 10**9)}",
                    "use": "mobile",
                }
            ],
            "gender": sex,
            "birthDate": birth.isoformat(),
            "address": [
                {
                    "use": "home",
                    "line": [f"{rng.randrange(1, 300)}号"],
                    "city": "成都市",
                    "district": district_name,
                    "state": "四川省",
                    "postalCode": "610000",
                }
            ],
            "managingOrganization": {"reference": f"Organization/{home.id}"},
        }
        out: list[dict[str, Any]] = [patient]
        age = (self.start - birth).days // 365
        chronic = [
            c
            for c in CONDITIONS
            if c[0] in ("I10", "E11.9") and rng.random() < c[2] * (2 if age > 50 else 0.3)
        ]
        for _v in range(rng.randint(3, 8)):
            out += self._encounter(
                rng, pid, birth, home if rng.random() < 0.7 else rng.choice(self.institutions), chronic
            )
        if age < 7 or rng.random() < 0.1:
            for code, name in VACCINES[: rng.randint(1, len(VACCINES))]:
                when = birth + timedelta(days=rng.randrange(0, 400))
                out.append(
                    {
                        "resourceType": "Immunization",
                        "id": uuid4(rng),
                        "status": "completed",
                        "vaccineCode": {
                            "coding": [
                                {"system": "urn:oid:2.16.156.10011.2.3.3.20", "code": code, "display": name}
                            ],
                            "text": name,
                        },
                        "patient": {"reference": f"Patient/{pid}"},
                        "occurrenceDateTime": when.isoformat(),
                        "performer": [{"actor": {"reference": f"Organization/{home.id}"}}],
                    }
                )
        return out

    def _encounter(
        self,
        rng: random.Random,
        pid: str,
        birth: date,
        inst: Institution,
        chronic: list[tuple[str, str, float]],
    ) -> list[dict[str, Any]]:
        day = self.start + timedelta(days=rng.randrange(0, 365 * self.years))
        start = datetime(
            day.year, day.month, day.day, rng.randrange(8, 17), rng.randrange(0, 60), tzinfo=SHANGHAI
        )
        enc_id = uuid4(rng)
        inpatient = rng.random() < 0.08
        klass = ("IMP", "inpatient encounter") if inpatient else ("AMB", "ambulatory")
        end = start + (
            timedelta(days=rng.randint(2, 12)) if inpatient else timedelta(minutes=rng.randint(10, 40))
        )
        doctor = f"{inst.id}-dr-{rng.randint(1, 2)}"
        subject = {"reference": f"Patient/{pid}"}
        enc_ref = {"reference": f"Encounter/{enc_id}"}
        out: list[dict[str, Any]] = [
            {
                "resourceType": "Encounter",
                "id": enc_id,
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": klass[0],
                    "display": klass[1],
                },
                "subject": subject,
                "participant": [{"individual": {"reference": f"Practitioner/{doctor}"}}],
                "period": {"start": start.isoformat(), "end": end.isoformat()},
                "serviceProvider": {"reference": f"Organization/{inst.id}"},
            }
        ]
        acute = rng.choices(CONDITIONS, [c[2] for c in CONDITIONS])[0]
        # dict.fromkeys, not a set: a set of strings iterates in a per-process order (hash randomisation).
        for code, name, _ in dict.fromkeys((acute, *chronic)):
            out.append(
                {
                    "resourceType": "Condition",
                    "id": uuid4(rng),
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "verificationStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                "code": "confirmed",
                            }
                        ]
                    },
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                    "code": "encounter-diagnosis",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": ICD10, "code": code, "display": name}], "text": name},
                    "subject": subject,
                    "encounter": enc_ref,
                    "recordedDate": start.isoformat(),
                }
            )
        when = start.isoformat()
        systolic = round(rng.gauss(150 if ("I10", "原发性高血压", 0.25) in chronic else 122, 12))
        out.append(
            _vital(
                rng,
                subject,
                enc_ref,
                when,
                "85354-9",
                "血压",
                components=[
                    ("8480-6", "收缩压", systolic, "mm[Hg]"),
                    ("8462-4", "舒张压", round(systolic * 0.62 + rng.gauss(0, 5)), "mm[Hg]"),
                ],
            )
        )
        out.append(
            _vital(rng, subject, enc_ref, when, "29463-7", "体重", value=(round(rng.gauss(65, 11), 1), "kg"))
        )
        out.append(
            _vital(rng, subject, enc_ref, when, "8302-2", "身高", value=(round(rng.gauss(165, 8), 1), "cm"))
        )
        out.append(
            _vital(rng, subject, enc_ref, when, "8867-4", "心率", value=(round(rng.gauss(75, 9)), "/min"))
        )
        for code, name, unit, mean, sd in rng.sample(LABS, rng.randint(1, 3)):
            out.append(
                {
                    "resourceType": "Observation",
                    "id": uuid4(rng),
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "laboratory",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
                    "subject": subject,
                    "encounter": enc_ref,
                    "effectiveDateTime": when,
                    "issued": end.isoformat(),
                    "valueQuantity": {
                        "value": round(max(0.1, rng.gauss(mean, sd)), 1),
                        "unit": unit,
                        "system": UCUM,
                        "code": unit,
                    },
                }
            )
        for drug, strength in rng.sample(DRUGS, rng.randint(1, 2)):
            out.append(
                {
                    "resourceType": "MedicationRequest",
                    "id": uuid4(rng),
                    "status": "completed",
                    "intent": "order",
                    "medicationCodeableConcept": {"text": f"{drug} {strength}"},
                    "subject": subject,
                    "encounter": enc_ref,
                    "authoredOn": when,
                    "requester": {"reference": f"Practitioner/{doctor}"},
                    "dosageInstruction": [
                        {
                            "text": "每日一次，每次一片",
                            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                        }
                    ],
                    "dispenseRequest": {"quantity": {"value": rng.choice([14, 28, 30]), "unit": "片"}},
                }
            )
        return out

    def residents(self, count: int, first: int = 0) -> Iterator[list[dict[str, Any]]]:
        """The records of residents ``first`` … ``first + count - 1``."""
        for i in range(first, first + count):
            yield self.patient_record(i)


def _vital(
    rng: random.Random,
    subject: dict[str, str],
    encounter: dict[str, str],
    when: str,
    code: str,
    name: str,
    value: tuple[float, str] | None = None,
    components: list[tuple[str, str, float, str]] | None = None,
) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": uuid4(rng),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
        "subject": subject,
        "encounter": encounter,
        "effectiveDateTime": when,
    }
    if value is not None:
        obs["valueQuantity"] = {"value": value[0], "unit": value[1], "system": UCUM, "code": value[1]}
    for ccode, cname, cvalue, unit in components or ():
        obs.setdefault("component", []).append(
            {
                "code": {"coding": [{"system": LOINC, "code": ccode, "display": cname}]},
                "valueQuantity": {"value": cvalue, "unit": unit, "system": UCUM, "code": unit},
            }
        )
    return obs


def as_transaction(record: list[dict[str, Any]]) -> dict[str, Any]:
    """A resident's record as a transaction Bundle of creates linked by ``urn:uuid`` references."""
    full = {f"{r['resourceType']}/{r['id']}": f"urn:uuid:{r['id']}" for r in record}
    entries = []
    for r in record:
        body = _rewrite({k: v for k, v in r.items() if k != "id"}, full)
        entries.append(
            {
                "fullUrl": full[f"{r['resourceType']}/{r['id']}"],
                "resource": body,
                "request": {"method": "POST", "url": r["resourceType"]},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _rewrite(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: (mapping.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, mapping))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite(v, mapping) for v in node]
    return node
