"""Notifiable diseases: seasonal baselines by district, and outbreaks injected at known places and dates.

Baseline cases arise person by person (a small daily hazard from the disease's incidence, the person's
age group, the month and whether the district is urban). Outbreaks are planned for the whole region before
care is generated: each picks a township, a date in the disease's season and residents of the right
ages living there, who then fall ill over the outbreak's days. The plan is the ground truth the
surveillance work is scored against (truth/outbreaks.json).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from rhip.synth import catalog
from rhip.synth.care import age_band
from rhip.synth.population import Population
from rhip.synth.rng import Weighted, stream

if TYPE_CHECKING:
    from rhip.synth.care import Clinic
    from rhip.synth.population import Person

# Share of the population in the case age groups 0-4, 5-14, 15-64, 65+ (Sichuan, 7th census; see
# population.toml), to turn "share of cases by age" into a relative risk by age.
_POPULATION_SHARE = (0.049, 0.111, 0.671, 0.169)
REFERENCE_PEOPLE = 100_000  # the outbreak frequencies in notifiable.toml are per year for this many residents


@dataclass
class Outbreak:
    """An injected outbreak and the people it made ill."""

    id: str
    disease: str
    name: str
    setting: str
    county: str
    township: str
    start: date
    days: int
    cases: list[tuple[int, date]] = field(default_factory=list)  # (person key, onset)

    def as_json(self) -> dict[str, Any]:
        """The outbreak as a ground-truth record."""
        return {
            "id": self.id,
            "disease": self.disease,
            "name": self.name,
            "setting": self.setting,
            "county": self.county,
            "township": self.township,
            "start": self.start.isoformat(),
            "end": (self.start + timedelta(days=self.days)).isoformat(),
            "cases": [{"person": f"P{k:08d}", "onset": d.isoformat()} for k, d in self.cases],
        }


@cache
def _month_factors() -> dict[str, list[float]]:
    """Each disease's monthly weights scaled to a mean of 1 (computed once per process)."""
    diseases = catalog.notifiable()["diseases"]
    return {code: [w * 12 / sum(d["months"]) for w in d["months"]] for code, d in diseases.items()}


def plan_outbreaks(population: Population, seed: int) -> list[Outbreak]:
    """Choose the outbreaks of the simulated years and the residents they strike."""
    rng = stream(seed, 0x0B7B)
    conf = catalog.notifiable()
    people = population.persons()
    n = max(1, len(people))
    years = (population.end - population.start).days / 365.25
    out: list[Outbreak] = []
    for disease, spec in conf["outbreaks"].items():
        info = conf["diseases"][disease]
        expected = spec["per_year"] * years * max(n / REFERENCE_PEOPLE, 0.25)
        count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
        months = Weighted(list(range(1, 13)), info["months"])
        for _ in range(count):
            month = months.draw(rng)
            year = rng.randrange(population.start.year, population.end.year + 1)
            start = date(year, month, rng.randrange(1, 28))
            if not (population.start <= start < population.end - timedelta(days=spec["days"][1])):
                continue
            low, high = spec["ages"]
            eligible: dict[str, list[Person]] = {}
            for p in people:
                if p.present(start) and low <= p.age(start) <= high:
                    eligible.setdefault(p.address_on(start)[0][:9], []).append(p)
            if not eligible:
                continue
            townships = sorted(eligible)
            township = Weighted(townships, [len(eligible[t]) ** 2 for t in townships]).draw(rng)
            pool = eligible[township]
            size = min(len(pool), rng.randint(*spec["size"]))
            if size < 3:
                continue
            days = rng.randint(*spec["days"])
            outbreak = Outbreak(
                f"OB-{disease}-{start:%Y%m%d}-{township}",
                disease,
                info["name"],
                spec["setting"],
                township[:6],
                township,
                start,
                days,
            )
            for p in rng.sample(pool, size):
                # Onsets cluster early in the outbreak (an epidemic curve), never before its start.
                onset = start + timedelta(days=min(days - 1, int(rng.expovariate(3.0 / days))))
                outbreak.cases.append((p.key, onset))
            outbreak.cases.sort(key=lambda c: (c[1], c[0]))
            out.append(outbreak)
    out.sort(key=lambda o: (o.start, o.id))
    return out


class Notifiable:
    """Baseline notifiable-disease cases of a person, and the visits that report them."""

    def __init__(self, clinic: Clinic) -> None:
        self.c = clinic
        self.conf = catalog.notifiable()["diseases"]
        self._months = _month_factors()

    def baseline(self, p: Person, first: date, last: date, urban: bool) -> list[tuple[str, date]]:
        """Draw the person's baseline cases between two dates: (disease, onset)."""
        r = self.c.rng
        cases: list[tuple[str, date]] = []
        years = (last - first).days / 365.25
        for code, d in self.conf.items():
            band = age_band(p.age(first))
            risk = d["ages"][band] / _POPULATION_SHARE[band]
            factor = d["urban_factor"] if urban else 1.0
            expected = d["incidence_per_100k"] / 100_000 * risk * factor * years
            if r.random() < expected:
                for _ in range(5):
                    day = first + timedelta(days=r.randrange(0, max(1, (last - first).days)))
                    if r.random() * 3.0 < self._months[code][day.month - 1]:
                        cases.append((code, day))
                        break
        return cases

    def report(self, p: Person, disease: str, onset: date, outbreak: str, rng: random.Random) -> None:
        """The visit at which a case is diagnosed and reported (传染病报告卡), and its ground truth."""
        d = self.conf[disease]
        day = onset + timedelta(days=rng.randrange(0, 3))
        if day >= self.c.end or not p.present(day):
            return
        age = p.age(day)
        level = 2 if disease in ("2600", "0800", "0302", "2400", "1000") else (1 if rng.random() < 0.5 else 2)
        inst = self.c.institution(p, day, level)
        dept = "儿科" if age < 14 else "感染科" if disease in ("2600", "0302", "0800") else "内科"
        v = self.c.visit(p, inst, day, "AMB", "outpatient", dept, (d["icd10"], d["name"]))
        confirmed = disease in ("2600", "0800", "0302", "1000", "2400", "0401") or rng.random() < 0.2
        cond = self.c.diagnose(
            v, d["icd10"], d["name"], onset=onset, notifiable=(disease, d["name"], "2" if confirmed else "1")
        )
        if disease in ("4000", "3500", "1400", "3900"):
            self.c.labs(v, "cbc")
        v.documents.append("HSDB03.02")
        self.c.close(v)
        self.c.chunk.case(p, disease, onset, day, inst.code, cond["id"], outbreak)
