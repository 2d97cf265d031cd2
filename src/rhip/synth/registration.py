"""How a resident is registered at each institution: local MRNs and the mistakes of real registration desks.

Every institution keeps its own Patient for a resident (its MRN namespace). The copy is made from what the
resident said, or what the clerk typed, on the day of the first visit: homophone characters in names,
mistyped or missing ID numbers, old 15-digit numbers, a baby registered under the mother's ID number, the
phone and address of that time. Each registration, with the mistakes made in it, goes to the ground-truth
file the master patient index is scored against.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rhip.synth import systems as s
from rhip.synth.idcard import to_15
from rhip.synth.population import Person
from rhip.synth.region import Institution, Region
from rhip.synth.rng import uuid4

# Characters that sound alike (同音字/近音字) and get typed for one another.
HOMOPHONES = [
    "丽莉俐利",
    "明铭鸣",
    "伟玮炜",
    "静婧靖",
    "军君钧",
    "华桦",
    "玲琳铃林",
    "娟鹃",
    "英瑛",
    "红虹宏鸿",
    "芳方",
    "涛韬",
    "杰洁",
    "敏珉",
    "霞侠",
    "建健",
    "平萍",
    "秀琇",
    "兰岚",
    "梅玫",
    "燕艳",
    "峰锋",
    "刚钢",
    "勇永",
    "斌彬",
    "辉晖",
    "子紫梓",
    "涵晗",
    "轩萱",
    "浩皓",
    "宇雨",
    "欣馨",
    "怡仪",
    "诺娜",
    "晨辰",
    "磊蕾",
    "鑫欣",
    "佳嘉",
    "雪薛",
    "文雯",
    "婷亭",
    "桂贵",
    "凤风",
    "琪琦淇",
    "博柏",
    "思斯",
]
_ALIKE = {ch: group for group in HOMOPHONES for ch in group}

# Rates of registration mistakes (invented; see docs/synthetic-data.md). Village clinics and township
# centres register with less care than hospitals' admission desks.
ID_MISSING = {0: 0.25, 1: 0.08, 2: 0.04, 3: 0.02}  # by institution level: village clinic … tertiary
RATES: dict[str, float] = {
    "homophone": 0.03,
    "id_typo": 0.012,
    "id_15": 0.25,  # of people born before 1985 registered by an institution whose HIS keeps 15 digits
    "birth_typo": 0.008,
    "sex_wrong": 0.002,
    "phone_missing": 0.05,
    "phone_typo": 0.02,
    "address_partial": 0.10,
    "baby_under_mother": 0.7,  # of babies under 3 months whose own ID number is not yet known
}


@dataclass
class Registration:
    """A resident's record at one institution."""

    patient_id: str
    mrn: str
    institution: str
    person: str
    registered: date
    errors: list[str] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    phone: str = ""
    village: str = ""


class Registrar:
    """Creates (once) and looks up each person's registration at each institution."""

    def __init__(self, region: Region, rng: random.Random, household: dict[int, Person]) -> None:
        self.region = region
        self.rng = rng
        self.household = household  # by key: a baby's mother is looked up here
        self.records: dict[tuple[int, str], Registration] = {}
        self._ids: dict[tuple[int, str], str] = {}

    def lookup(self, person: Person, inst: Institution) -> Registration | None:
        """The person's registration there, if any."""
        return self.records.get((person.key, inst.code))

    def patient_id(self, person: Person, inst: Institution) -> str:
        """The id of the person's Patient at ``inst`` (fixed before the registration itself is made)."""
        key = (person.key, inst.code)
        pid = self._ids.get(key)
        if pid is None:
            pid = self._ids[key] = uuid4(self.rng)
        return pid

    def register(self, person: Person, inst: Institution, on: date, new_id: str) -> tuple[Registration, bool]:
        """The registration at ``inst`` (made on ``on`` if new) and whether it was just created."""
        existing = self.records.get((person.key, inst.code))
        if existing is not None:
            return existing, False
        reg = Registration(
            patient_id=new_id,
            mrn=self._mrn(person, inst),
            institution=inst.code,
            person=person.id,
            registered=on,
        )
        reg.resource = self._patient(person, inst, on, reg)
        self.records[(person.key, inst.code)] = reg
        return reg, True

    def _mrn(self, person: Person, inst: Institution) -> str:
        # Random digits, not derived from the person: an MRN must carry no hint of who the person is at
        # other institutions. MRN styles differ by HIS vendor.
        style = sum(map(ord, inst.his)) % 3
        number = self.rng.randrange(10**11, 10**12)
        if style == 0:
            return f"{number}"
        if style == 1:
            return f"M{number}"
        return f"{inst.code[-3:]}{number}"

    def _patient(self, p: Person, inst: Institution, on: date, reg: Registration) -> dict[str, Any]:
        r = self.rng
        errors = reg.errors
        family, given = p.family, p.given
        if r.random() < RATES["homophone"] and any(ch in _ALIKE for ch in given):
            k = next(i for i, ch in enumerate(given) if ch in _ALIKE)
            alt = [c for c in _ALIKE[given[k]] if c != given[k]]
            given = given[:k] + r.choice(alt) + given[k + 1 :]
            errors.append("name-homophone")
        identifiers: list[dict[str, Any]] = [{"system": s.mrn_system(inst.code), "value": reg.mrn}]
        id_number: str | None = p.id_number
        age_days = (on - p.birth).days
        if age_days < 90 and p.mother is not None and r.random() < RATES["baby_under_mother"]:
            mother = self.household.get(p.mother)
            if mother is not None:
                id_number = mother.id_number
                family, given = mother.family + mother.given, "之子" if p.male else "之女"
                errors.append("baby-under-mother-id")
        elif r.random() < ID_MISSING[inst.level if inst.level >= 0 else 1]:
            id_number = None
            errors.append("id-missing")
        elif r.random() < RATES["id_typo"]:
            id_number = _typo(r, p.id_number)
            errors.append("id-typo")
        elif p.birth.year < 1985 and inst.his.startswith(("中联", "众阳")) and r.random() < RATES["id_15"]:
            id_number = to_15(p.id_number)
            errors.append("id-15-digit")
        if id_number:
            identifiers.append({"system": s.ID_CARD, "value": id_number})
        if inst.level >= 1 and r.random() < 0.6:
            identifiers.append({"system": s.HEALTH_CARD, "value": p.health_card})
        if inst.level >= 2 and r.random() < 0.7:
            identifiers.append({"system": s.INSURANCE_CARD, "value": p.insurance})
        if inst.kind in ("thc", "chc", "village"):
            identifiers.append({"system": s.HEALTH_RECORD, "value": p.record_no})
        birth = p.birth.isoformat()
        if r.random() < RATES["birth_typo"]:
            birth = _birth_typo(r, p.birth)
            errors.append("birth-typo")
        male = p.male
        if r.random() < RATES["sex_wrong"]:
            male = not male
            errors.append("sex-wrong")
        village, house = p.address_on(on)
        reg.village = village
        partial = r.random() < RATES["address_partial"]
        if partial:
            errors.append("address-partial")
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "id": reg.patient_id,
            "identifier": identifiers,
            "active": True,
            "name": [{"use": "official", "text": family + given, "family": family, "given": [given]}],
            "gender": "male" if male else "female",
            "birthDate": birth,
            "address": [self.address(village, house, partial=partial)],
            "maritalStatus": {
                "coding": [{"system": s.MARITAL, "code": p.marital, "display": _MARITAL[p.marital]}]
            },
            "extension": [
                {
                    "url": "urn:rhip:ext:ethnicity",
                    "valueCodeableConcept": {"coding": [{"system": s.ETHNICITY, "code": p.ethnicity}]},
                }
            ],
            "managingOrganization": {"reference": f"Organization/{inst.id}"},
        }
        phone = p.phone_on(on)
        if r.random() < RATES["phone_missing"]:
            errors.append("phone-missing")
        else:
            if r.random() < RATES["phone_typo"]:
                phone = _typo(r, phone)
                errors.append("phone-typo")
            reg.phone = phone
            resource["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
        if p.twin is not None:
            resource["multipleBirthBoolean"] = True
        return resource

    def address(self, village: str, house: str, partial: bool = False) -> dict[str, Any]:
        """A home address in FHIR form (province … village, house) with its division code."""
        div = self.region.divisions.by_code
        v = div[village]
        township = div[v.parent]
        county = div[township.parent]
        city = self.region.city.name
        if partial:
            return {
                "use": "home",
                "text": f"四川省{city}{county.name}",
                "city": city,
                "district": county.name,
                "state": "四川省",
            }
        line = f"{township.name}{v.short_name}{house}"
        return {
            "use": "home",
            "text": f"四川省{city}{county.name}{line}",
            "line": [line],
            "city": city,
            "district": county.name,
            "state": "四川省",
            "extension": [{"url": "urn:rhip:ext:division", "valueCode": village}],
        }


_MARITAL = {"10": "未婚", "20": "已婚", "30": "丧偶", "40": "离婚"}


def _typo(r: random.Random, value: str) -> str:
    chars = list(value)
    k = r.randrange(0, len(chars) - 1)
    if r.random() < 0.5:
        chars[k], chars[k + 1] = chars[k + 1], chars[k]
        if chars[k] == chars[k + 1]:
            chars[k] = str((int(chars[k]) + 1) % 10) if chars[k].isdigit() else chars[k]
    else:
        chars[k] = str((int(chars[k]) + r.randrange(1, 10)) % 10) if chars[k].isdigit() else chars[k]
    return "".join(chars)


def _birth_typo(r: random.Random, birth: date) -> str:
    if birth.day <= 12 and birth.day != birth.month:
        return date(birth.year, birth.day, birth.month).isoformat()  # day and month swapped
    day = min(28, max(1, birth.day + r.choice((-1, 1, 10, -10))))
    return date(birth.year, birth.month, day).isoformat()
