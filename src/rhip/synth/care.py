"""Care over the simulated years, one household at a time: visits, diagnoses, labs, drugs, admissions.

A visit is registered at the institution (creating that institution's Patient the first time), becomes
an Encounter with what happened in it, and is handed to the output (``Chunk``), which writes it in every
format the institution uses. Public-health programmes live in ``programmes.py`` and notifiable
diseases in ``epidemics.py``; both build visits through ``Visit`` here.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from rhip.synth import builders as b
from rhip.synth import catalog
from rhip.synth import systems as s
from rhip.synth.population import Person
from rhip.synth.region import Institution, Region, location_id
from rhip.synth.registration import Registrar
from rhip.synth.rng import Weighted, uuid4

if TYPE_CHECKING:
    from rhip.synth.output import Chunk


@dataclass
class Visit:
    """An encounter being built: where, who, when, and the resources it produced."""

    person: Person
    inst: Institution
    patient_id: str
    day: date
    klass: str
    service: str
    department: str
    doctor: Any
    encounter_id: str
    start: str
    end: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    diagnoses: list[tuple[str, str]] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)  # document codes (C0002, HSDB04.01 …) to write
    lab_reports: list[tuple[dict[str, Any], list[dict[str, Any]]]] = field(default_factory=list)
    referral_to: Institution | None = None
    discharge_death: bool = False
    encounter: dict[str, Any] = field(default_factory=dict)  # the Encounter resource, also in resources


class Clinic:
    """Generates the care of one household's members and hands every visit to the output."""

    def __init__(
        self, region: Region, rng: random.Random, chunk: Chunk, start: date, end: date, registrar: Registrar
    ) -> None:
        self.region = region
        self.rng = rng
        self.chunk = chunk
        self.start = start
        self.end = end
        self.registrar = registrar
        self.conf = catalog.clinical()
        self.scale = float(self.conf["care_scale"])
        tables = _tables()
        self._ages = tables.ages
        self._levels = tables.levels
        self._acute_tables = tables.acute
        self._admit_tables = tables.admit
        self._seq = 0

    # -- identifiers ------------------------------------------------------------------------------
    def new_id(self) -> str:
        """A fresh resource id (reproducible for the seed)."""
        return uuid4(self.rng)

    def number(self, prefix: str, day: date) -> str:
        """A business number (visit, report, prescription) unique within the household's run."""
        self._seq += 1
        return f"{prefix}{day:%Y%m%d}{self.chunk.key:07d}{self._seq:04d}"

    # -- where people go ----------------------------------------------------------------------------
    def institution(self, person: Person, day: date, level: int) -> Institution:
        """The institution of a level a person would use: the nearest one of that level."""
        village, _ = person.address_on(day)
        township = village[:9]
        if level == 0:
            clinic = self.region.by_village.get(village)
            if clinic is not None:
                return clinic
            level = 1
        if level == 1:
            centre = self.region.by_township.get(township)
            if centre is not None:
                return centre
            level = 2
        if level == 2:
            hospitals = self.region.county_hospitals.get(village[:6]) or self.region.county_hospitals.get(
                self.region.counties[0].code, []
            )
            if hospitals:
                return hospitals[0] if len(hospitals) == 1 or self.rng.random() < 0.7 else hospitals[1]
        return (
            self.region.tertiary[(person.key + day.year) % len(self.region.tertiary)]
            if self.rng.random() < 0.3
            else self.region.tertiary[person.key % len(self.region.tertiary)]
        )

    # -- visits -------------------------------------------------------------------------------------
    def visit(
        self,
        person: Person,
        inst: Institution,
        day: date,
        klass: str,
        service: str,
        department: str,
        reason: tuple[str, str] | None = None,
        stay_days: int = 0,
    ) -> Visit:
        """Open a visit: register the person if needed and create the Encounter."""
        r = self.rng
        patient_id = self.registrar.patient_id(person, inst)
        dept = inst.department(department)
        doctors = inst.doctors(dept)
        doctor = doctors[(person.key + day.toordinal()) % len(doctors)] if doctors else None
        minute = r.randrange(8 * 60, 17 * 60) if klass != "EMER" else r.randrange(0, 24 * 60)
        start = b.instant(day, minute)
        end = b.instant(
            day + timedelta(days=stay_days),
            minute + (r.randrange(10, 50) if not stay_days else r.randrange(60, 180)),
        )
        enc_id = self.new_id()
        visit_no = self.number("ZY" if klass == "IMP" else "MZ", day)
        visit = Visit(person, inst, patient_id, day, klass, service, dept, doctor, enc_id, start, end)
        enc = b.encounter(
            enc_id,
            patient_id,
            inst.id,
            inst.name,
            klass,
            service,
            start,
            end,
            doctor.id if doctor else "unknown",
            doctor.name if doctor else "",
            location_id(inst, dept),
            dept,
            visit_no,
            s.INPATIENT_NO if klass == "IMP" else s.OUTPATIENT_NO,
            reason,
        )
        visit.resources.append(enc)
        visit.encounter = enc
        return visit

    def diagnose(
        self,
        v: Visit,
        code: str,
        name: str,
        onset: date | None = None,
        chronic: bool = False,
        notifiable: tuple[str, str, str] | None = None,
    ) -> dict[str, Any]:
        """Record a diagnosis in the visit."""
        cond = b.condition(
            self.new_id(),
            v.patient_id,
            v.encounter_id,
            code,
            name,
            v.start,
            (onset or v.day).isoformat(),
            v.doctor.id if v.doctor else "unknown",
            chronic=chronic,
            notifiable=notifiable,
        )
        v.resources.append(cond)
        v.diagnoses.append((code, name))
        enc = v.encounter
        enc.setdefault("diagnosis", []).append(
            {"condition": b.ref("Condition", cond["id"]), "rank": len(v.diagnoses)}
        )
        return cond

    def vitals(
        self,
        v: Visit,
        systolic: int,
        diastolic: int,
        weight: float | None = None,
        height: float | None = None,
    ) -> None:
        """Blood pressure (and weight and height when measured)."""
        pid, org = v.patient_id, v.inst.id
        v.resources.append(
            b.blood_pressure(self.new_id(), pid, v.encounter_id, org, v.start, systolic, diastolic)
        )
        if weight is not None:
            v.resources.append(
                b.vital(
                    self.new_id(), pid, v.encounter_id, org, v.start, "29463-7", "体重", weight, "kg", "kg"
                )
            )
        if height is not None:
            v.resources.append(
                b.vital(
                    self.new_id(), pid, v.encounter_id, org, v.start, "8302-2", "身高", height, "cm", "cm"
                )
            )

    def labs(self, v: Visit, panel: str, shift: dict[str, float] | None = None) -> list[dict[str, Any]]:
        """A laboratory panel: its results and the report over them."""
        items = self.conf["labs"].get(panel, [])
        if not items or v.inst.level < 1:
            return []
        report_no = self.number("JY", v.day)
        issued = v.end  # reported when the visit ends, never before the sample was taken
        results: list[dict[str, Any]] = []
        for item in items:
            mean = item[5] + (shift or {}).get(item[0], 0.0)
            value = round(max(0.0, self.rng.gauss(mean, item[6])), 2 if item[5] < 20 else 0)
            results.append(
                b.lab(
                    self.new_id(),
                    v.patient_id,
                    v.encounter_id,
                    v.inst.id,
                    v.inst.code,
                    v.start,
                    issued,
                    f"{report_no}-{len(results) + 1}",
                    item,
                    value,
                )
            )
        rep = b.report(
            self.new_id(),
            v.patient_id,
            v.encounter_id,
            v.inst.id,
            v.inst.code,
            v.start,
            issued,
            report_no,
            panel,
            [o["id"] for o in results],
        )
        v.resources.extend(results)
        v.resources.append(rep)
        v.lab_reports.append((rep, results))
        return results

    def prescribe(self, v: Visit, drug_key: str, quantity: int | None = None) -> None:
        """A prescription and its dispensing."""
        drug = self.conf["drugs"].get(drug_key)
        if drug is None:
            return
        req, disp = b.medication(
            self.new_id(),
            self.new_id(),
            v.patient_id,
            v.encounter_id,
            v.inst.id,
            v.inst.code,
            v.doctor.id if v.doctor else "unknown",
            v.start,
            self.number("CF", v.day),
            drug,
            quantity or drug[4],
        )
        v.resources.append(req)
        v.resources.append(disp)

    def close(self, v: Visit) -> None:
        """Hand the finished visit to the output."""
        self.chunk.visit(v)

    # -- acute care ---------------------------------------------------------------------------------
    def rate(self, table: str, age: int) -> float:
        """A yearly utilisation rate for an age."""
        return float(self.conf["utilisation"][table][max(0, bisect_right(self._ages, age) - 1)])

    def acute_care(self, p: Person, first: date, last: date) -> None:
        """Outpatient, emergency and inpatient care for acute illness between two dates."""
        for day in self._arrivals(p, first, last, "outpatient", self.scale, 0.01):
            self.acute_visit(p, day)
        for day in self._arrivals(p, first, last, "admissions", 1.0, 0.001):
            item = self._admit_tables[age_band(p.age(day))].draw(self.rng)
            self.admission(p, day, item["code"], item["name"], item["dept"], item)

    def _arrivals(
        self, p: Person, first: date, last: date, table: str, scale: float, floor: float
    ) -> Iterator[date]:
        """The days of a Poisson process whose yearly rate follows the person's age."""
        day = first
        while True:
            yearly = self.rate(table, p.age(day)) * scale
            day = day + timedelta(
                days=max(1, int(-math.log(1.0 - self.rng.random()) * 365.25 / max(yearly, floor)))
            )
            if day >= last:
                return
            yield day

    def acute_visit(self, p: Person, day: date) -> None:
        """One outpatient or emergency visit for an acute problem."""
        r = self.rng
        age = p.age(day)
        item = self._acute_tables[age_band(age)].draw(r)
        emergency = r.random() < self.conf["utilisation"]["emergency_share"] or item["dept"] == "急诊科"
        kind = "emergency" if emergency else "outpatient"
        level = self._levels[kind].draw(r)
        if age < 1 and level == 0:
            level = 1
        inst = self.institution(p, day, level)
        v = self.visit(
            p,
            inst,
            day,
            "EMER" if emergency else "AMB",
            kind,
            "急诊科" if emergency else _dept_for_age(item["dept"], age),
            (item["code"], item["name"]),
        )
        self.diagnose(v, item["code"], item["name"])
        if age >= 35 and r.random() < 0.5:
            systolic = int(r.gauss(128 + (age - 35) * 0.45, 14))
            self.vitals(v, systolic, int(systolic * 0.62 + r.gauss(0, 6)))
        for panel in item["labs"]:
            if r.random() < 0.3:
                self.labs(v, panel)
        for k, drug in enumerate(item["drugs"]):
            if r.random() < (0.8 if k == 0 else 0.3):
                self.prescribe(v, drug)
        if inst.level >= 2 and r.random() < 0.25:
            v.documents.append("C0002")
            if v.lab_reports:
                v.documents.append("C0007")
        # Serious cases seen low in the chain are referred upwards (上转) and seen there a few days later.
        if inst.level <= 1 and item["admit"] >= 0.2 and r.random() < 0.6:
            target = self.institution(p, day, 2 if r.random() < 0.7 else 3)
            v.referral_to = target
            v.resources.append(
                b.referral(
                    self.new_id(),
                    v.patient_id,
                    v.encounter_id,
                    v.doctor.id if v.doctor else "unknown",
                    v.start,
                    target.id,
                    target.name,
                    item["code"],
                    item["name"],
                )
            )
            v.documents.append("HSDC00.05")
            self.close(v)
            if r.random() < item["admit"]:
                self.admission(
                    p,
                    day + timedelta(days=r.randrange(0, 3)),
                    item["code"],
                    item["name"],
                    item["dept"],
                    item,
                    target,
                )
            return
        self.close(v)

    def admission(
        self,
        p: Person,
        day: date,
        code: str,
        name: str,
        dept: str,
        item: dict[str, Any] | None = None,
        inst: Institution | None = None,
        stay: int | None = None,
        death: bool = False,
    ) -> Visit | None:
        """An inpatient stay: diagnosis, labs, procedures, drugs, discharge (or death)."""
        r = self.rng
        if day >= self.end or not p.present(day):
            return None
        if inst is None:
            level = self._levels["inpatient"].draw(r)
            inst = self.institution(p, day, max(level, 1))
        los = (
            stay
            if stay is not None
            else max(1, int(r.lognormvariate(math.log(6 if inst.level <= 1 else 8), 0.5)))
        )
        if day + timedelta(days=los) >= self.end:
            los = max(0, (self.end - day).days - 1)
        v = self.visit(
            p, inst, day, "IMP", "inpatient", _dept_for_age(dept, p.age(day)), (code, name), stay_days=los
        )
        self.diagnose(v, code, name)
        age = p.age(day)
        systolic = int(r.gauss(125 + max(0, age - 35) * 0.5, 15))
        self.vitals(
            v,
            systolic,
            int(systolic * 0.62 + r.gauss(0, 6)),
            weight=round(r.gauss(62 if age >= 15 else 3 + age * 2.5, 8 if age >= 15 else 1.5), 1),
        )
        for panel in (item or {}).get("labs", ["cbc"]) or ["cbc"]:
            self.labs(v, panel)
        for proc in (item or {}).get("procedures", []):
            pname = self.conf["procedures"].get(proc, proc)
            v.resources.append(
                b.procedure(
                    self.new_id(),
                    v.patient_id,
                    v.encounter_id,
                    v.doctor.id if v.doctor else "unknown",
                    v.start,
                    proc,
                    pname,
                )
            )
        for drug in (item or {}).get("drugs", []):
            self.prescribe(v, drug)
        enc = v.encounter
        enc["hospitalization"] = {
            "admitSource": {"text": "门诊" if r.random() < 0.7 else "急诊"},
            "dischargeDisposition": {
                "coding": [
                    {
                        "system": "urn:oid:2.16.156.10011.2.3.1.265",
                        "code": "5" if death else "1",
                        "display": "死亡" if death else "医嘱离院",
                    }
                ]
            },
        }
        v.discharge_death = death
        v.documents.extend(("C0032", "C0053"))
        self.close(v)
        return v


def age_band(age: int) -> int:
    """Age band of the diagnosis and notifiable-disease tables: <5, 5–14, 15–64, 65+."""
    return 0 if age < 5 else 1 if age < 15 else 2 if age < 65 else 3


@dataclass(frozen=True)
class _Tables:
    ages: list[int]
    levels: dict[str, Weighted[int]]
    acute: list[Weighted[dict[str, Any]]]
    admit: list[Weighted[dict[str, Any]]]


@cache
def _tables() -> _Tables:
    """The weighted draws of the clinical model, built once per process (not per household)."""
    conf = catalog.clinical()
    u = conf["utilisation"]
    acute = conf["acute"]
    return _Tables(
        ages=u["ages"],
        levels={
            "outpatient": Weighted([0, 1, 2, 3], u["outpatient_level"]),
            "emergency": Weighted([0, 1, 2, 3], u["emergency_level"]),
            "inpatient": Weighted([0, 1, 2, 3], u["admission_level"]),
        },
        acute=[Weighted(acute, [a["weights"][band] + 1e-9 for a in acute]) for band in range(4)],
        admit=[
            Weighted(acute, [(a["weights"][band] + 1e-9) * a["admit"] for a in acute]) for band in range(4)
        ],
    )


def _dept_for_age(dept: str, age: int) -> str:
    return "儿科" if age < 14 and dept not in ("急诊科", "眼科", "皮肤科") else dept
