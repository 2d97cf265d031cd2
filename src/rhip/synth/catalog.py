"""The standard data files of the generator, loaded once: divisions, population, names, clinical model.

Every file under ``rhip/synth/data`` names its source in its header; this module only reads them.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from rhip.synth.rng import Weighted


def _text(name: str) -> str:
    return resources.files("rhip.synth").joinpath("data", name).read_text(encoding="utf-8")


def load_toml(name: str) -> dict[str, Any]:
    """A TOML data file of the package."""
    return tomllib.loads(_text(name))


def load_csv(name: str) -> list[dict[str, str]]:
    """A CSV data file of the package, without its ``#`` comment lines."""
    lines = [line for line in _text(name).splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines))


@dataclass(frozen=True)
class Division:
    """An administrative division (GB/T 2260 county, 统计用区划代码 township, or a village)."""

    code: str
    name: str
    level: str  # city | county | township | village
    parent: str
    valid_from: date | None = None
    valid_to: date | None = None
    population: int = 0

    @property
    def urban(self) -> bool:
        """Urban sub-districts (街道) and communities (社区) are urban; towns and villages are rural."""
        return self.name.endswith(("街道", "社区", "居民委员会"))

    @property
    def short_name(self) -> str:
        """The name used in addresses: 和平村村民委员会 → 和平村, 警钟街社区居民委员会 → 警钟街社区."""
        if self.name.endswith("村民委员会"):
            base = self.name[:-5]
            return base if base.endswith("村") else base + "村"
        if self.name.endswith("居民委员会"):
            base = self.name[:-5]
            return base if base.endswith("社区") else base + "社区"
        return self.name

    @property
    def special(self) -> bool:
        """Special statistical units (codes x400–x599: farms, prisons, zones) house no ordinary residents."""
        return self.level == "township" and int(self.code[6:9]) >= 400


@dataclass
class Divisions:
    """The region's divisions, by code, with their children."""

    by_code: dict[str, Division]
    children: dict[str, list[Division]] = field(default_factory=dict)

    @property
    def city(self) -> Division:
        """The prefecture-level city."""
        return next(d for d in self.by_code.values() if d.level == "city")

    def current_counties(self, on: date) -> list[Division]:
        """The districts and counties valid on a date (merged ones drop out)."""
        return [
            d
            for d in self.by_code.values()
            if d.level == "county"
            and (d.valid_from is None or d.valid_from <= on)
            and (d.valid_to is None or on < d.valid_to)
        ]


def _date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    if len(text) == 4:
        return date(int(text), 1, 1)
    return date.fromisoformat(text)


@cache
def divisions() -> Divisions:
    """The divisions of the synthetic city (data/divisions.csv)."""
    by_code: dict[str, Division] = {}
    for row in load_csv("divisions.csv"):
        pop = (row.get("population_2020") or "").strip()
        by_code[row["code"]] = Division(
            code=row["code"],
            name=row["name"],
            level=row["level"],
            parent=row["parent"],
            valid_from=_date(row.get("valid_from") or ""),
            valid_to=_date(row.get("valid_to") or ""),
            population=int(float(pop)) if pop else 0,
        )
    children: dict[str, list[Division]] = {}
    for d in by_code.values():
        children.setdefault(d.parent, []).append(d)
    for kids in children.values():
        kids.sort(key=lambda d: d.code)
    return Divisions(by_code, children)


@dataclass(frozen=True)
class Name:
    """A surname or given name with its pinyin."""

    text: str
    pinyin: str


@dataclass
class NameTables:
    """Surnames, and given names by birth cohort and sex, each with a weighted draw."""

    surnames: Weighted[Name]
    given: dict[tuple[str, str], Weighted[Name]]  # (cohort, sex) -> names; sex M, F

    def given_for(self, year: int, male: bool) -> Weighted[Name]:
        """The given names of the cohort of a birth year (nearest cohort present)."""
        sex = "M" if male else "F"
        decade = max(1930, min(2020, year // 10 * 10))
        for d in (decade, decade - 10, decade + 10, decade - 20, decade + 20):
            table = self.given.get((f"{d}s", sex))
            if table is not None:
                return table
        return next(t for (c, s), t in self.given.items() if s == sex)


@cache
def names() -> NameTables:
    """The name tables (data/names.csv)."""
    surnames: list[tuple[Name, float]] = []
    given: dict[tuple[str, str], list[tuple[Name, float]]] = {}
    for row in load_csv("names.csv"):
        item = (Name(row["text"], row["pinyin"]), float(row["weight"]))
        if row["kind"] == "surname":
            surnames.append(item)
        elif row["kind"] == "given":
            sexes = ("M", "F") if row.get("sex", "U") in ("U", "") else (row["sex"],)
            for sex in sexes:
                given.setdefault((row["cohort"], sex), []).append(item)
    return NameTables(
        Weighted([n for n, _ in surnames], [w for _, w in surnames]),
        {k: Weighted([n for n, _ in v], [w for _, w in v]) for k, v in given.items()},
    )


@cache
def population() -> dict[str, Any]:
    """Population structure (data/population.toml)."""
    return load_toml("population.toml")


@cache
def clinical() -> dict[str, Any]:
    """The clinical model (data/clinical.toml)."""
    return load_toml("clinical.toml")


@cache
def notifiable() -> dict[str, Any]:
    """Notifiable diseases and outbreaks (data/notifiable.toml)."""
    return load_toml("notifiable.toml")


@cache
def immunization() -> dict[str, Any]:
    """The immunization schedules (data/immunization-schedules.toml)."""
    return load_toml("immunization-schedules.toml")


@cache
def institutions() -> dict[str, Any]:
    """Institution kinds, departments and staffing (data/institutions.toml)."""
    return load_toml("institutions.toml")
