"""The region: its divisions, institutions, departments and staff, and their FHIR registry resources.

Institution codes are ``<division code><letter><nn>``: W commission, J CDC, F maternal-and-child hospital,
H hospital, S community health centre (社区卫生服务中心), X township health centre (乡镇卫生院), C village clinic
(村卫生室). The code is the institution's key everywhere (its MRN namespace, its output files).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rhip.synth import catalog
from rhip.synth import systems as s
from rhip.synth.catalog import Division
from rhip.synth.codes import uscc
from rhip.synth.rng import Weighted, stream

# Visit level of each kind: 0 village clinic, 1 township/community centre, 2 county level, 3 city tertiary.
LEVEL = {
    "village": 0,
    "thc": 1,
    "chc": 1,
    "secondary": 2,
    "mch": 2,
    "tertiary": 3,
    "cdc": -1,
    "commission": -1,
}
_LETTER = {
    "commission": "W",
    "cdc": "J",
    "mch": "F",
    "tertiary": "H",
    "secondary": "H",
    "chc": "S",
    "thc": "X",
    "village": "C",
}
_HIS = ("卫宁HIS", "东华HIS", "创业慧康HIS", "中联HIS", "众阳HIS", "医惠HIS")


@dataclass
class Staff:
    """A practitioner working at one institution."""

    id: str
    staff_no: str
    licence: str
    family: str
    given: str
    male: bool
    birth: date
    group: str  # doctor | nurse | other | village
    title: str
    department: str

    @property
    def name(self) -> str:
        """The full name in characters."""
        return self.family + self.given


@dataclass
class Institution:
    """A health institution of the region."""

    code: str
    name: str
    kind: str
    county: str  # GB/T 2260 county code
    township: str  # township code ('' for county- and city-level institutions)
    uscc: str
    licence: str
    parent: str | None  # code of the supervising institution
    door: str = "fhir"  # fhir | hl7v2 | hl7v3: how its systems send data to the platform
    charset: str = "UTF-8"
    msh18: str | None = "UNICODE UTF-8"  # what its HL7 v2 messages declare in MSH-18 (None: nothing)
    his: str = ""
    departments: list[tuple[str, str]] = field(default_factory=list)
    staff: list[Staff] = field(default_factory=list)
    address: str = ""

    @property
    def id(self) -> str:
        """The FHIR Organization id."""
        return f"org-{self.code}"

    @property
    def level(self) -> int:
        """Its place in the referral chain (0 village clinic … 3 city tertiary hospital)."""
        return LEVEL[self.kind]

    def doctors(self, department: str | None = None) -> list[Staff]:
        """Its doctors, of a department when there are any there."""
        docs = [p for p in self.staff if p.group in ("doctor", "village")]
        if department:
            in_dept = [p for p in docs if p.department == department]
            if in_dept:
                return in_dept
        return docs or self.staff

    def department(self, wanted: str) -> str:
        """The department that sees a patient for ``wanted`` here (general medicine where there is no such one)."""
        names = [d for d, _ in self.departments]
        if wanted in names:
            return wanted
        for fallback in ("内科", "全科医疗科", "急诊科"):
            if fallback in names:
                return fallback
        return names[0] if names else wanted


class Region:
    """The synthetic city, built deterministically from the seed."""

    def __init__(self, seed: int, start: date) -> None:
        self.seed = seed
        self.divisions = catalog.divisions()
        self.city = self.divisions.city
        self.counties = sorted(self.divisions.current_counties(start), key=lambda d: d.code)
        self.townships: dict[str, list[Division]] = {
            c.code: [t for t in self.divisions.children.get(c.code, []) if not t.special]
            for c in self.counties
        }
        self.villages: dict[str, list[Division]] = {
            t.code: self.divisions.children.get(t.code, []) for ts in self.townships.values() for t in ts
        }
        self.institutions: dict[str, Institution] = {}
        self._sequence: dict[str, int] = {}
        self._org_cache: dict[str, dict[str, Any]] = {}
        self._staff_cache: dict[str, dict[str, Any]] = {}
        self._build()
        self.by_township: dict[str, Institution] = {
            i.township: i for i in self.institutions.values() if i.kind in ("thc", "chc")
        }
        self.by_village: dict[str, Institution] = {
            i.township: i for i in self.institutions.values() if i.kind == "village"
        }
        self.county_hospitals: dict[str, list[Institution]] = {}
        for i in self.institutions.values():
            if i.kind == "secondary":
                self.county_hospitals.setdefault(i.county, []).append(i)
        self.tertiary = [i for i in self.institutions.values() if i.kind == "tertiary"]
        self.mch = next(i for i in self.institutions.values() if i.kind == "mch")
        self.cdc = next(i for i in self.institutions.values() if i.kind == "cdc")

    # -- construction ---------------------------------------------------------------------------
    def _add(
        self,
        rng: random.Random,
        kind: str,
        division: str,
        county: str,
        township: str,
        name: str,
        parent: str | None,
    ) -> Institution:
        prefix = division + _LETTER[kind]
        seq = self._sequence[prefix] = self._sequence.get(prefix, 0) + 1
        code = f"{division}{_LETTER[kind]}{seq:02d}"
        body = f"{rng.randrange(10**7, 10**8)}"
        inst = Institution(
            code=code,
            name=name,
            kind=kind,
            county=county,
            township=township,
            uscc=uscc(county, body),
            licence=f"{body}{county}{catalog.institutions()['kinds'][kind]['ws218'] or 'Z000'}{seq:02d}",
            parent=parent,
            his=rng.choice(_HIS),
        )
        self.institutions[code] = inst
        return inst

    def _build(self) -> None:
        rng = stream(self.seed, 0x5E610)
        conf = catalog.institutions()
        city = self.city.code
        central = self.counties[0].code
        commission = self._add(rng, "commission", city, central, "", f"{self.city.name}卫生健康委员会", None)
        self._add(rng, "cdc", city, central, "", f"{self.city.name}疾病预防控制中心", commission.code)
        self._add(rng, "mch", city, central, "", f"{self.city.name}妇幼保健院", commission.code)
        for k, name in enumerate(conf["tertiary"]):
            self._add(
                rng,
                "tertiary",
                self.counties[k % 2].code,
                self.counties[k % 2].code,
                "",
                name,
                commission.code,
            )
        big = sorted(self.counties, key=lambda c: -len(self.townships[c.code]))[
            : conf["second_hospital_counties"]
        ]
        for county in self.counties:
            self._add(
                rng, "secondary", county.code, county.code, "", f"{county.name}人民医院", commission.code
            )
            if county in big:
                self._add(
                    rng, "secondary", county.code, county.code, "", f"{county.name}中医医院", commission.code
                )
        for county in self.counties:
            for t in self.townships[county.code]:
                kind = "chc" if t.urban else "thc"
                stem = t.name.removesuffix("街道")
                name = (
                    f"{county.name}{stem}街道社区卫生服务中心"
                    if kind == "chc"
                    else f"{county.name}{t.name}卫生院"
                )
                centre = self._add(rng, kind, t.code, county.code, t.code, name, commission.code)
                if kind == "thc":
                    for v in self.villages[t.code]:
                        if not v.urban:
                            clinic = self._add(
                                rng,
                                "village",
                                v.code,
                                county.code,
                                t.code,
                                f"{t.name}{v.short_name}卫生室",
                                centre.code,
                            )
                            clinic.township = v.code
        self._assign_doors(rng, conf)
        for inst in self.institutions.values():
            inst.departments = [(d, c) for d, c in conf["departments"][inst.kind]]
            inst.address = self._address_of(inst)
            self._staff(inst, conf)

    def _assign_doors(self, rng: random.Random, conf: dict[str, Any]) -> None:
        doors = conf["doors"]
        for inst in self.institutions.values():
            if inst.kind in ("tertiary", "secondary", "mch") and rng.random() < doors["hl7v2_hospitals"]:
                inst.door = "hl7v2"
                inst.charset = "GBK" if rng.random() < doors["hl7v2_gbk"] else "UTF-8"
                # Some GBK senders leave MSH-18 empty; which ones is a fixed trait of the institution.
                if inst.charset == "UTF-8":
                    inst.msh18 = "UNICODE UTF-8"
                else:
                    inst.msh18 = None if int(inst.uscc[-2], 36) % 2 else "GB 18030-2000"
        county = self.counties[doors["hl7v3_county_index"] % len(self.counties)].code
        for inst in self.institutions.values():
            if inst.kind == "thc" and inst.county == county:
                inst.door = "hl7v3"

    def _address_of(self, inst: Institution) -> str:
        county = self.divisions.by_code[inst.county].name
        place = self.divisions.by_code[inst.township].short_name if inst.township else ""
        return f"四川省{self.city.name}{county}{place}{(int(inst.code[-2:]) * 37) % 300 + 1}号"

    def _staff(self, inst: Institution, conf: dict[str, Any]) -> None:
        rng = stream(self.seed, 0x57AFF, int(inst.code[:-3]), ord(inst.code[-3]), int(inst.code[-2:]))
        names = catalog.names()
        counts = conf["staff"][inst.kind]
        groups = (
            ["village" if inst.kind == "village" else "doctor"] * counts[0]
            + ["nurse"] * counts[1]
            + ["other"] * counts[2]
        )
        clinical = (
            [d for d, _ in inst.departments if d not in ("检验科", "医学影像科")]
            or [d for d, _ in inst.departments]
            or ["行政"]
        )
        titles = {
            g: Weighted([t for t, _ in conf["titles"][g]], [w for _, w in conf["titles"][g]])
            for g in conf["titles"]
        }
        for n, group in enumerate(groups, start=1):
            male = rng.random() < (
                0.55 if group in ("doctor", "village") else 0.1 if group == "nurse" else 0.45
            )
            birth = date(rng.randrange(1962, 1999), rng.randrange(1, 13), rng.randrange(1, 29))
            family = names.surnames.draw(rng)
            given = names.given_for(birth.year, male).draw(rng)
            dept = (
                clinical[(n - 1) % len(clinical)]
                if group != "other"
                else ("检验科" if "检验科" in dict(inst.departments) else clinical[0])
            )
            inst.staff.append(
                Staff(
                    id=f"prac-{inst.code}-{n:03d}",
                    staff_no=f"{n:04d}",
                    licence=f"{'1' if group in ('doctor', 'village') else '2'}{rng.randrange(10**13, 10**14)}",
                    family=family.text,
                    given=given.text,
                    male=male,
                    birth=birth,
                    group=group,
                    title=titles[group].draw(rng),
                    department=dept,
                )
            )

    # -- FHIR --------------------------------------------------------------------------------------
    def resources(self) -> list[dict[str, Any]]:
        """Every registry resource: Organizations, Locations (departments), Practitioners and their roles."""
        out: list[dict[str, Any]] = []
        for inst in self.institutions.values():
            out.append(self.organization(inst))
            for k, (dept, code) in enumerate(inst.departments, start=1):
                out.append(_location(inst, k, dept, code))
            for p in inst.staff:
                out.append(_practitioner(inst, p))
                out.append(_role(inst, p))
        return out

    def organization_resource(self, inst: Institution) -> dict[str, Any]:
        """The institution's Organization (built once)."""
        org = self._org_cache.get(inst.code)
        if org is None:
            org = self._org_cache[inst.code] = self.organization(inst)
        return org

    def practitioner_resource(self, inst: Institution, staff: Staff) -> dict[str, Any]:
        """A staff member's Practitioner (built once)."""
        res = self._staff_cache.get(staff.id)
        if res is None:
            res = self._staff_cache[staff.id] = _practitioner(inst, staff)
        return res

    def organization(self, inst: Institution) -> dict[str, Any]:
        """An institution as an Organization."""
        kind = catalog.institutions()["kinds"][inst.kind]
        county = self.divisions.by_code[inst.county]
        org: dict[str, Any] = {
            "resourceType": "Organization",
            "id": inst.id,
            "identifier": [
                {"system": s.USCC, "value": inst.uscc},
                {"system": s.INSTITUTION_LICENCE, "value": inst.licence},
                {"system": s.ORGANIZATION_OID, "value": inst.code},
            ],
            "active": True,
            "type": [
                {"coding": [{"system": s.ORGANIZATION_TYPE, "code": kind["fhir_type"]}]},
                {
                    "coding": [
                        {
                            "system": "urn:rhip:cs:institution-kind",
                            "code": inst.kind,
                            "display": kind["display"],
                        }
                    ]
                },
            ],
            "name": inst.name,
            "telecom": [{"system": "phone", "value": f"0816-{2200000 + int(inst.uscc[-6:-1], 36) % 800000}"}],
            "address": [
                {
                    "text": inst.address,
                    "city": self.city.name,
                    "district": county.name,
                    "state": "四川省",
                    "extension": [
                        {"url": "urn:rhip:ext:division", "valueCode": inst.township or inst.county}
                    ],
                }
            ],
        }
        if inst.parent:
            org["partOf"] = {"reference": f"Organization/org-{inst.parent}"}
        return org


def _location(inst: Institution, k: int, dept: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "id": f"loc-{inst.code}-{k:02d}",
        "status": "active",
        "name": dept,
        "mode": "instance",
        "type": [{"coding": [{"system": s.DEPARTMENT, "code": code, "display": dept}]}],
        "physicalType": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/location-physical-type", "code": "wa"}
            ]
        },
        "managingOrganization": {"reference": f"Organization/{inst.id}"},
    }


def location_id(inst: Institution, dept: str) -> str:
    """The Location id of a department of an institution."""
    for k, (name, _) in enumerate(inst.departments, start=1):
        if name == dept:
            return f"loc-{inst.code}-{k:02d}"
    return f"loc-{inst.code}-01"


def _practitioner(inst: Institution, p: Staff) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": p.id,
        "identifier": [
            {"system": s.STAFF_NO, "value": p.staff_no, "assigner": {"reference": f"Organization/{inst.id}"}},
            {"system": s.PRACTITIONER_LICENCE, "value": p.licence},
        ],
        "active": True,
        "name": [{"use": "official", "text": p.name, "family": p.family, "given": [p.given]}],
        "gender": "male" if p.male else "female",
        "birthDate": p.birth.isoformat(),
        "qualification": [
            {
                "code": {
                    "coding": [{"system": s.PRACTITIONER_ROLE, "code": p.title, "display": p.title}],
                    "text": p.title,
                }
            }
        ],
    }


_ROLE = {
    "doctor": ("doctor", "医师"),
    "village": ("doctor", "乡村医生"),
    "nurse": ("nurse", "护士"),
    "other": ("pharmacist", "药技人员"),
}


def _role(inst: Institution, p: Staff) -> dict[str, Any]:
    code, display = _ROLE[p.group]
    return {
        "resourceType": "PractitionerRole",
        "id": f"role-{p.id[5:]}",
        "active": True,
        "practitioner": {"reference": f"Practitioner/{p.id}"},
        "organization": {"reference": f"Organization/{inst.id}"},
        "code": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/practitioner-role",
                        "code": code,
                        "display": display,
                    }
                ]
            }
        ],
        "specialty": [{"text": p.department}],
        "location": [{"reference": f"Location/{location_id(inst, p.department)}"}],
    }
