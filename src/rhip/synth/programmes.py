"""Chronic disease and the public-health services (国家基本公共卫生服务规范, 第三版) of each resident.

- Hypertension and type 2 diabetes: diagnosed patients aged 35+ are managed by their township or
  community centre, with a face-to-face follow-up about every 3 months (some missed), blood pressure at
  each, fasting glucose for diabetes, and the next visit in 2 weeks when uncontrolled.
- Residents aged 65+: a yearly health check (vitals, blood and urine routine, lipids, liver and kidney
  function, glucose).
- Pregnancy: antenatal visits (before 13 weeks, 16–20, 21–24, 28–36, 37–40), delivery, a postpartum home
  visit within a week and the 42-day check.
- Children: a newborn home visit, checks at 1, 3, 6, 8, 12, 18, 24, 30 and 36 months, then yearly to 6
  years; vaccination by the national schedule in force when each dose is due (2021 or 2025 edition),
  with realistic delays and misses.
The rules are in cn-standards.md §5; the rates that say how often people actually come are in the data
files and docs/synthetic-data.md.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

from rhip.synth import builders as b
from rhip.synth import catalog
from rhip.synth.care import Clinic
from rhip.synth.population import Person

CHILD_CHECK_MONTHS = (1, 3, 6, 8, 12, 18, 24, 30, 36, 48, 60, 72)
ANTENATAL_WEEKS = ((8, 12), (16, 20), (21, 24), (28, 36), (37, 40))
# Share of scheduled programme visits that happen (invented; 基本公卫 assessments report follow-up rates
# of roughly 70–90%).
ATTEND = {"htn": 0.82, "dm": 0.80, "elderly": 0.62, "child": 0.88, "antenatal": 0.9, "postpartum": 0.85}


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (clamped to the month's length)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    return date(year, month, 28)


class Programmes:
    """Chronic disease, programme visits and immunizations of one person."""

    def __init__(self, clinic: Clinic) -> None:
        self.c = clinic
        self.r = clinic.rng
        self.conf = catalog.clinical()
        self.imm = catalog.immunization()

    # -- chronic disease ------------------------------------------------------------------------------
    def chronic(self, p: Person, first: date, last: date) -> list[str]:
        """Decide the person's chronic conditions; manage them; return their codes."""
        r = self.r
        ages = self.conf["chronic_ages"]["ages"]
        age = p.age(first)
        had: list[str] = []
        for item in self.conf["chronic"]:
            group = max(0, sum(1 for a in ages if a <= age) - 1)
            share = item["prevalence"][group] / 100 * (1.0 if p.male else item["female"])
            if r.random() >= share:
                continue
            had.append(item["code"])
            onset = first - timedelta(days=r.randrange(30, 3650))
            # The diagnosis reaches the record at a first visit where it is found or confirmed.
            day = first + timedelta(days=r.randrange(0, 200))
            if day >= last:
                continue
            inst = self.c.institution(p, day, 1 if r.random() < 0.6 else 2)
            v = self.c.visit(p, inst, day, "AMB", "outpatient", "内科", (item["code"], item["name"]))
            self.c.diagnose(v, item["code"], item["name"], onset=onset, chronic=True)
            for panel in item["labs"]:
                self.c.labs(v, panel, _shift(item["code"]))
            for drug in item["drugs"][:1]:
                self.c.prescribe(v, drug)
            self.c.close(v)
            if item["programme"] and age >= 35:
                self.follow_ups(p, item, day, last)
        return had

    def follow_ups(self, p: Person, item: dict[str, Any], enrolled: date, last: date) -> None:
        """The quarterly follow-ups of a managed hypertensive or diabetic patient."""
        r = self.r
        programme = item["programme"]
        service = "htn-followup" if programme == "htn" else "dm-followup"
        doc = "HSDB04.01" if programme == "htn" else "HSDB04.02"
        drugs = item["drugs"]
        drug = drugs[p.key % len(drugs)]
        control = 0.55 + r.random() * 0.3  # each patient's own chance of being controlled at a visit
        day = enrolled + timedelta(days=int(r.gauss(90, 12)))
        uncontrolled = 0
        while day < last and p.present(day):
            if r.random() < ATTEND[programme]:
                inst = self.c.institution(p, day, 1)
                v = self.c.visit(p, inst, day, "AMB", service, "全科医疗科", (item["code"], item["name"]))
                controlled = r.random() < control
                age = p.age(day)
                limit = 150 if age >= 65 else 140
                if programme == "htn" or r.random() < 0.7:
                    systolic = (
                        int(r.gauss(limit - 12, 7))
                        if controlled or programme == "dm"
                        else int(r.gauss(limit + 14, 9))
                    )
                    diastolic = int(min(systolic * 0.62 + r.gauss(0, 5), 88 if controlled else 110))
                    self.c.vitals(v, systolic, diastolic, weight=round(r.gauss(64 if p.male else 57, 8), 1))
                if programme == "dm":
                    value = round(r.gauss(6.2, 0.5) if controlled else r.gauss(8.6, 1.3), 1)
                    glucose = self.conf["labs"]["glucose"][0]
                    report_no = self.c.number("JY", day)
                    obs = b.lab(
                        self.c.new_id(),
                        v.patient_id,
                        v.encounter_id,
                        v.inst.id,
                        v.inst.code,
                        v.start,
                        v.end,
                        report_no,
                        glucose,
                        value,
                    )
                    v.resources.append(obs)
                self.c.prescribe(v, drug, quantity=None)
                v.documents.append(doc)
                self.c.close(v)
                uncontrolled = 0 if controlled else uncontrolled + 1
                gap = 14 if uncontrolled else 90
            else:
                gap = 90  # missed: the next scheduled date comes round
            day = day + timedelta(days=max(7, int(r.gauss(gap, gap * 0.12))))

    # -- older residents ----------------------------------------------------------------------------
    def elderly_checks(self, p: Person, first: date, last: date) -> None:
        """The yearly health check of residents aged 65 and over."""
        r = self.r
        year = first.year
        while year <= last.year:
            day = date(year, 3, 1) + timedelta(days=r.randrange(0, 240))
            if first <= day < last and p.age(day) >= 65 and p.present(day) and r.random() < ATTEND["elderly"]:
                inst = self.c.institution(p, day, 1)
                v = self.c.visit(p, inst, day, "AMB", "elderly-check", "预防保健科")
                age = p.age(day)
                systolic = int(r.gauss(132 + (age - 65) * 0.4, 15))
                self.c.vitals(
                    v,
                    systolic,
                    int(systolic * 0.6 + r.gauss(0, 6)),
                    weight=round(r.gauss(60 if p.male else 54, 9), 1),
                    height=round(r.gauss(164 if p.male else 153, 6), 1),
                )
                for panel in ("cbc", "glucose", "lipids", "liver", "renal"):
                    self.c.labs(v, panel)
                self.c.close(v)
            year += 1

    # -- pregnancy and birth --------------------------------------------------------------------------
    def pregnancy(self, mother: Person, baby_birth: date, babies: list[Person]) -> None:
        """Antenatal care, the delivery and postpartum care of a mother."""
        r = self.r
        conception = baby_birth - timedelta(days=r.randrange(266, 287))
        for low, high in ANTENATAL_WEEKS:
            day = conception + timedelta(days=7 * r.randint(low, high))
            if self.c.start <= day < self.c.end and mother.present(day) and r.random() < ATTEND["antenatal"]:
                level = 1 if low < 16 or r.random() < 0.5 else 2
                inst = (
                    self.c.region.mch
                    if level == 2 and r.random() < 0.4
                    else self.c.institution(mother, day, level)
                )
                v = self.c.visit(mother, inst, day, "AMB", "antenatal", "妇产科", ("Z34.9", "正常妊娠监督"))
                self.c.diagnose(v, "Z34.9", "正常妊娠监督")
                systolic = int(r.gauss(112, 9))
                self.c.vitals(
                    v,
                    systolic,
                    int(systolic * 0.63),
                    weight=round(r.gauss(58 + 0.3 * (day - conception).days / 7, 6), 1),
                )
                if low < 16:
                    self.c.labs(v, "cbc")
                self.c.close(v)
        if not (self.c.start <= baby_birth < self.c.end):
            return
        caesarean = r.random() < 0.36  # caesarean rate in China ≈ 36% (Li HT et al., JAMA 2017)
        code, name = ("O82.9", "经剖宫产术的单胎分娩") if caesarean else ("O80.9", "单胎顺产")
        if len(babies) > 1:
            code, name = (
                ("O84.2", "多胎分娩，全部经剖宫产") if caesarean else ("O84.0", "多胎分娩，全部自然分娩")
            )
        inst = (
            self.c.region.mch
            if r.random() < 0.35
            else self.c.institution(mother, baby_birth, 2 if r.random() < 0.7 else 3)
        )
        item = {
            "labs": ["cbc"],
            "procedures": ["74.1" if caesarean else "73.59"],
            "drugs": ["cefuroxime"] if caesarean else [],
        }
        self.c.admission(
            mother, baby_birth, code, name, "妇产科", item, inst=inst, stay=5 if caesarean else 3
        )
        discharge = baby_birth + timedelta(days=5 if caesarean else 3)
        for offset, service in ((r.randrange(3, 8), "postpartum-visit"), (42, "postpartum-42d")):
            day = discharge + timedelta(days=offset)
            if day < self.c.end and mother.present(day) and r.random() < ATTEND["postpartum"]:
                klass = "HH" if service == "postpartum-visit" else "AMB"
                centre = self.c.institution(mother, day, 1)
                pv = self.c.visit(mother, centre, day, klass, service, "妇产科")
                systolic = int(r.gauss(114, 9))
                self.c.vitals(pv, systolic, int(systolic * 0.63))
                self.c.close(pv)

    # -- children ----------------------------------------------------------------------------------
    def child_checks(self, p: Person, first: date, last: date) -> None:
        """The newborn home visit and the child health checks up to 6 years."""
        r = self.r
        visit_day = p.birth + timedelta(days=r.randrange(5, 10))
        if first <= visit_day < last and p.present(visit_day) and r.random() < ATTEND["child"]:
            v = self.c.visit(
                p, self.c.institution(p, visit_day, 1), visit_day, "HH", "newborn-visit", "预防保健科"
            )
            self._child_measures(v, p, visit_day)
            self.c.close(v)
        for months in CHILD_CHECK_MONTHS:
            day = add_months(p.birth, months) + timedelta(days=r.randrange(-3, 15))
            if first <= day < last and p.present(day) and r.random() < ATTEND["child"]:
                v = self.c.visit(p, self.c.institution(p, day, 1), day, "AMB", "child-check", "预防保健科")
                self._child_measures(v, p, day)
                if months in (6, 8, 18, 30):
                    self.c.labs(v, "cbc")
                self.c.close(v)

    def _child_measures(self, v: Any, p: Person, day: date) -> None:
        months = max(0.0, (day - p.birth).days / 30.44)
        # WHO-like growth: weight ≈ 3.3 kg at birth, ~9.5 kg at 12 months, ~20 kg at 6 years.
        weight = 3.3 + 6.2 * (1 - math.exp(-months / 5.5)) + 0.17 * months * (months > 12)
        height = 50 + 25 * (1 - math.exp(-months / 9)) + 0.55 * max(0.0, months - 12)
        pid, org = v.patient_id, v.inst.id
        v.resources.append(
            b.vital(
                self.c.new_id(),
                pid,
                v.encounter_id,
                org,
                v.start,
                "29463-7",
                "体重",
                round(weight * (1.04 if p.male else 0.97) + self.r.gauss(0, 0.5), 1),
                "kg",
                "kg",
            )
        )
        v.resources.append(
            b.vital(
                self.c.new_id(),
                pid,
                v.encounter_id,
                org,
                v.start,
                "8302-2",
                "身长" if months < 24 else "身高",
                round(height + self.r.gauss(0, 1.5), 1),
                "cm",
                "cm",
            )
        )

    def immunizations(self, p: Person, first: date, last: date) -> list[tuple[str, int, date, date | None]]:
        """Vaccinate by the schedule in force when each dose is due; returns (vaccine, dose, due, given)."""
        r = self.r
        behaviour = self.imm["behaviour"]
        editions = sorted(self.imm["editions"].items(), key=lambda kv: kv[1]["effective"])
        vaccines = self.imm["vaccines"]
        record: list[tuple[str, int, date, date | None]] = []
        for key, edition in editions:
            for vaccine, dose, due_months, timely_months in edition["doses"]:
                due = add_months(p.birth, due_months) if due_months else p.birth
                # A child follows the edition in force when it was born (children born before a change
                # finish the schedule they started), so no dose is lost or doubled at the switch.
                if _edition_on(editions, p.birth)[0] != key:
                    continue
                if not (first <= due < last) or not p.present(due):
                    continue
                roll = r.random()
                missed = behaviour["missed_first_year"] if due_months < 12 else behaviour["missed_later"]
                if roll < missed:
                    record.append((vaccine, dose, due, None))
                    continue
                if roll < missed + behaviour["late"]:
                    lo, hi = behaviour["late_days"]
                    given = add_months(p.birth, timely_months) + timedelta(days=r.randrange(lo, hi))
                else:
                    span = (
                        max(1, (add_months(p.birth, timely_months) - due).days)
                        if timely_months > due_months
                        else 1
                    )
                    given = due + timedelta(days=r.randrange(0, span))
                if given >= last or not p.present(given):
                    record.append((vaccine, dose, due, None))
                    continue
                inst = (
                    self.c.region.mch
                    if due_months == 0 and r.random() < 0.4
                    else self.c.institution(p, given, 1)
                )
                v = self.c.visit(p, inst, given, "AMB", "immunization", "预防接种门诊")
                v.resources.append(
                    b.immunization(
                        self.c.new_id(),
                        v.patient_id,
                        inst.id,
                        v.start,
                        vaccine,
                        vaccines[vaccine]["name"],
                        dose,
                        edition["title"],
                        f"{given.year}{r.randrange(1, 13):02d}{chr(65 + r.randrange(0, 6))}{r.randrange(10, 99)}",
                    )
                )
                v.documents.append("HSDB03.01")
                self.c.close(v)
                record.append((vaccine, dose, due, given))
        return record

    # -- allergies ----------------------------------------------------------------------------------
    def allergies(self, p: Person, first: date, last: date) -> None:
        """Drug allergies, recorded at a hospital visit."""
        r = self.r
        for item in self.conf["allergy"]:
            if r.random() < item["share"]:
                day = first + timedelta(days=r.randrange(0, max(1, (last - first).days)))
                if day >= last or not p.present(day):
                    continue
                inst = self.c.institution(p, day, 2)
                v = self.c.visit(p, inst, day, "AMB", "outpatient", "内科")
                v.resources.append(
                    b.allergy(
                        self.c.new_id(),
                        v.patient_id,
                        item["code"],
                        item["name"],
                        v.start,
                        v.doctor.id if v.doctor else "unknown",
                    )
                )
                self.c.close(v)


def _edition_on(editions: list[tuple[str, dict[str, Any]]], day: date) -> tuple[str, dict[str, Any]]:
    current = editions[0]
    for key, edition in editions:
        if date.fromisoformat(edition["effective"]) <= day:
            current = (key, edition)
    return current


def _shift(code: str) -> dict[str, float]:
    if code == "E11.9":
        return {"1558-6": 2.8, "4548-4": 1.8}
    if code in ("I10", "I25.1"):
        return {"2093-3": 0.5, "13457-7": 0.5}
    return {}
