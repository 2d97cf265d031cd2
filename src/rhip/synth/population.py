"""Residents and households, and their lives over the simulated years: births, moves, deaths.

The whole population is assembled up front (it is small: a person is a few hundred bytes), so that
identifiers are unique across the region and outbreaks can pick their cases; the expensive part, the
care each person receives, is generated per household afterwards, in parallel.

Assembly keeps the census marginals exact: persons are drawn from the age–sex pyramid first, then
grouped into couples, children are given to a mother of a plausible age, and some of the elderly join
a child's household.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from rhip.synth import catalog
from rhip.synth.idcard import make_id_number
from rhip.synth.region import Region
from rhip.synth.rng import Weighted, stream

# Area codes of places outside the region where in-migrants' ID numbers were issued (GB/T 2260).
OTHER_AREAS = ("510104", "510105", "510603", "510802", "511302", "500101", "511002", "513701")
_MOBILE_PREFIXES = (
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "157",
    "158",
    "159",
    "182",
    "183",
    "187",
    "188",
    "130",
    "131",
    "132",
    "155",
    "156",
    "185",
    "186",
    "133",
    "153",
    "180",
    "181",
    "189",
    "177",
    "199",
    "198",
    "166",
)
_ROADS = (
    "人民路",
    "建设路",
    "解放街",
    "临园路",
    "长虹大道",
    "剑南路",
    "涪城路",
    "花园路",
    "安昌路",
    "南河路",
    "东津路",
    "滨江路",
)


@dataclass(slots=True)
class Person:
    """One resident: the truth that every institution's registration is a (messy) copy of."""

    key: int
    household: int
    male: bool
    birth: date
    family: str = ""
    given: str = ""
    family_py: str = ""
    given_py: str = ""
    id_number: str = ""
    ethnicity: str = "01"
    marital: str = "10"
    # (from date, village code, house) — the first entry is the address at the start (or on arrival).
    addresses: list[tuple[date, str, str]] = field(default_factory=list)
    phones: list[tuple[date, str]] = field(default_factory=list)
    moved_in: date | None = None
    moved_out: date | None = None
    death: date | None = None
    death_cause: str = ""
    mother: int | None = None
    father: int | None = None
    twin: int | None = None
    spouse: int | None = None
    health_card: str = ""
    insurance: str = ""
    record_no: str = ""

    @property
    def id(self) -> str:
        """The person's id in the ground-truth files."""
        return f"P{self.key:08d}"

    @property
    def name(self) -> str:
        """The full name in characters."""
        return self.family + self.given

    def age(self, on: date) -> int:
        """Age in whole years on a date."""
        return on.year - self.birth.year - ((on.month, on.day) < (self.birth.month, self.birth.day))

    def address_on(self, on: date) -> tuple[str, str]:
        """(village code, house) where the person lived on a date."""
        current = self.addresses[0]
        for entry in self.addresses:
            if entry[0] <= on:
                current = entry
        return current[1], current[2]

    def phone_on(self, on: date) -> str:
        """The mobile number the person gave on a date."""
        current = self.phones[0][1]
        for since, number in self.phones:
            if since <= on:
                current = number
        return current

    def present(self, on: date) -> bool:
        """Whether the person was alive and living in the region on a date."""
        return (
            self.birth <= on
            and (self.moved_in is None or self.moved_in <= on)
            and (self.moved_out is None or on < self.moved_out)
            and (self.death is None or on < self.death)
        )


@dataclass
class Household:
    """People who live together (户)."""

    key: int
    members: list[Person]


@dataclass
class Population:
    """Every resident of the simulated years, by household."""

    households: list[Household]
    start: date
    end: date

    def persons(self) -> list[Person]:
        """All persons, in household order."""
        return [p for h in self.households for p in h.members]


def _group_lows(groups: list[str]) -> list[int]:
    """The lower bounds of age groups written "0-4", "5-9" … "100+"."""
    return [int(g.split("-")[0].rstrip("+")) for g in groups]


def _pyramid() -> tuple[list[int], list[float], list[float]]:
    data = catalog.population()["pyramid"]
    lows = _group_lows(data["groups"])
    return lows, [float(x) for x in data["male"]], [float(x) for x in data["female"]]


class PopulationBuilder:
    """Builds the population of a region for the years ``start`` … ``end``."""

    def __init__(self, region: Region, seed: int, start: date, end: date) -> None:
        self.region = region
        self.seed = seed
        self.start = start
        self.end = end
        self.rng = stream(seed, 0xB0B)
        self.names = catalog.names()
        self.conf = catalog.population()
        self._ids: set[str] = set()
        self._phones: set[str] = set()
        self._key = 0
        self._places = self._place_weights()
        self._ethnicities: dict[str, Weighted[str]] = {}
        self._mortality_lows = _group_lows(self.conf["pyramid"]["groups"])
        causes = catalog.clinical()["death_cause"]
        self._death_causes = [
            Weighted([c["code"] for c in causes], [c["weights"][band] + 1e-9 for c in causes])
            for band in range(4)
        ]

    # -- places -----------------------------------------------------------------------------------
    def _place_weights(self) -> Weighted[str]:
        # Invented weights (no census by village is available): urban communities are three times as
        # populous as rural villages.
        codes: list[str] = []
        weights: list[float] = []
        for villages in self.region.villages.values():
            for v in villages:
                codes.append(v.code)
                weights.append(3.0 if v.urban else 1.0)
        return Weighted(codes, weights)

    def _house(self, village: str) -> str:
        v = self.region.divisions.by_code[village]
        r = self.rng
        if v.urban:
            road, building = f"{r.choice(_ROADS)}{r.randrange(1, 400)}号", f"{r.randrange(1, 30)}栋"
            return f"{road}{building}{r.randrange(1, 6)}单元{r.randrange(1, 33)}0{r.randrange(1, 5)}"
        return f"{r.randrange(1, 15)}组{r.randrange(1, 120)}号"

    # -- people -----------------------------------------------------------------------------------
    def _new_person(self, household: int, male: bool, birth: date) -> Person:
        self._key += 1
        return Person(key=self._key, household=household, male=male, birth=birth)

    def _draw_age_sex(self, n: int) -> list[tuple[bool, date]]:
        lows, male, female = _pyramid()
        cells = [(lo, True) for lo in lows] + [(lo, False) for lo in lows]
        table = Weighted(cells, male + female)
        out = []
        for _ in range(n):
            lo, is_male = table.draw(self.rng)
            width = 5
            age_days = int((lo + self.rng.random() * width) * 365.25)
            out.append((is_male, self.start - timedelta(days=age_days)))
        return out

    def build(self, n: int) -> Population:
        """Assemble ``n`` residents present at the start into households, then simulate their years."""
        r = self.rng
        drawn = self._draw_age_sex(n)
        people = [Person(key=0, household=0, male=m, birth=b) for m, b in drawn]
        adults = [p for p in people if p.age(self.start) >= 18]
        units = self._couples(adults)
        # Children, and unmarried young adults, mostly live with their parents.
        single_young = {
            id(u[0]) for u in units if len(u) == 1 and u[0].age(self.start) < 30 and r.random() < 0.7
        }
        units = [u for u in units if not (len(u) == 1 and id(u[0]) in single_young)]
        children = sorted(
            (p for p in people if p.age(self.start) < 18 or id(p) in single_young), key=lambda p: p.birth
        )
        self._give_children(units, children)
        units = self._join_elderly(units)
        households: list[Household] = []
        for unit in units:
            hh = Household(len(households) + 1, [])
            for p in unit:
                self._key += 1
                p.key = self._key
                p.household = hh.key
                hh.members.append(p)
            households.append(hh)
        r.shuffle(households)  # households of a village are not all neighbours in the file
        for k, hh in enumerate(households, start=1):
            hh.key = k
            for p in hh.members:
                p.household = k
        for hh in households:
            self._settle(hh)
        for hh in households:
            self._simulate(hh)
        return Population(households, self.start, self.end)

    def _couples(self, adults: list[Person]) -> list[list[Person]]:
        r = self.rng
        status = self._married_share()
        codes = self.conf["marital"]["codes"]
        for p in adults:
            p.marital = Weighted(codes, status(p.age(self.start), p.male)).draw(r)
        men = sorted((p for p in adults if p.male and p.marital == "20"), key=lambda p: p.birth)
        women = sorted((p for p in adults if not p.male and p.marital == "20"), key=lambda p: p.birth)
        units: list[list[Person]] = []
        paired: set[int] = set()
        for man, woman in zip(men, women, strict=False):
            man.spouse, woman.spouse = id(woman), id(man)
            man.marital = woman.marital = "20"
            units.append([man, woman])
            paired.update((id(man), id(woman)))
        for p in adults:
            if id(p) not in paired:
                if p.marital == "20":  # more married people of one sex than of the other in the sample
                    p.marital = "30" if p.age(self.start) >= 60 else "40"
                units.append([p])
        return units

    def _married_share(self) -> Callable[[int, bool], list[float]]:
        table = self.conf["marital"]
        lows = _group_lows(table["groups"])

        def share(age: int, male: bool) -> list[float]:
            if age < lows[0]:
                return [100.0, 0.0, 0.0, 0.0]
            group = table["groups"][max(0, bisect_left(lows, age + 1) - 1)]
            return [float(x) for x in table["male" if male else "female"][group]]

        return share

    def _give_children(self, units: list[list[Person]], children: list[Person]) -> None:
        r = self.rng
        by_age: dict[int, list[list[Person]]] = {}
        for unit in units:
            carer = next((p for p in unit if not p.male), unit[0])
            by_age.setdefault(carer.birth.year, []).append(unit)
        for child in children:
            for _ in range(12):
                year = child.birth.year - r.randint(22, 38)
                candidates = by_age.get(year)
                if not candidates:
                    continue
                unit = r.choice(candidates)
                if sum(1 for p in unit if p.mother is not None or p.father is not None) >= 3:
                    continue
                unit.append(child)
                mother = next((p for p in unit if not p.male and p.age(self.start) >= 18), None)
                father = next((p for p in unit if p.male and p.age(self.start) >= 18), None)
                child.mother = id(mother) if mother else None
                child.father = id(father) if father else None
                break
            else:
                units.append([child])  # an orphan or a child living with relatives not in the sample

    def _join_elderly(self, units: list[list[Person]]) -> list[list[Person]]:
        r = self.rng
        share = float(self.conf["simulation"]["elderly_with_children"])
        by_year: dict[int, list[list[Person]]] = {}
        for unit in units:
            head = unit[0]
            if 25 <= head.age(self.start) < 60:
                by_year.setdefault(head.birth.year, []).append(unit)
        out: list[list[Person]] = []
        for unit in units:
            head = unit[0]
            if (
                head.age(self.start) >= 65
                and all(p.age(self.start) >= 50 for p in unit)
                and r.random() < share
            ):
                year = head.birth.year + r.randint(24, 34)
                hosts = by_year.get(year)
                if hosts:
                    host = r.choice(hosts)
                    host.extend(unit)
                    continue
            out.append(unit)
        return [u for u in out if u]

    # -- identity ---------------------------------------------------------------------------------
    def _settle(self, hh: Household) -> None:
        r = self.rng
        village = self._places.draw(r)
        house = self._house(village)
        county = village[:6]
        ids = {id(p): p for p in hh.members}
        surname = self.names.surnames.draw(r)
        for p in hh.members:
            mother = ids.get(p.mother) if p.mother else None
            father = ids.get(p.father) if p.father else None
            p.mother = mother.key if mother else None
            p.father = father.key if father else None
            spouse = ids.get(p.spouse) if p.spouse else None
            p.spouse = spouse.key if spouse else None
        for p in hh.members:
            if p.father is not None or (p.male and p.spouse is not None) or p is hh.members[0]:
                name = surname
            else:
                name = self.names.surnames.draw(r)
            if p.father is None and p.mother is not None and r.random() < 0.06:
                name = self.names.surnames.draw(r)  # some children carry the mother's or another surname
            given = self.names.given_for(p.birth.year, p.male).draw(r)
            p.family, p.family_py = name.text, name.pinyin
            p.given, p.given_py = given.text, given.pinyin
            p.addresses = [(self.start, village, house)]
            p.ethnicity = self._ethnicity(county)
            area = self._birth_area(county, p.birth)
            p.id_number = self._unique_id(area, p.birth, p.male)
        self._give_phones(hh, self.start)
        for p in hh.members:
            self._cards(p, village)

    def _ethnicity(self, county: str) -> str:
        key = "beichuan" if county == "510726" else "mianyang"
        table = self._ethnicities.get(key)
        if table is None:
            shares = self.conf["ethnicity"][key]
            table = self._ethnicities[key] = Weighted(shares["codes"], shares["percent"])
        return str(table.draw(self.rng))

    def _birth_area(self, county: str, birth: date) -> str:
        if self.rng.random() < 0.08:
            return self.rng.choice(OTHER_AREAS)
        if county == "510705" and birth.year < 2016:
            return "510724"  # born when 安州区 was still 安县: the old code stays in the ID number
        return county

    def _unique_id(self, area: str, birth: date, male: bool) -> str:
        for _ in range(1000):
            number = make_id_number(area, birth, self.rng.randrange(0, 500), male)
            if number not in self._ids:
                self._ids.add(number)
                return number
        raise RuntimeError("ID sequence space exhausted for one area and birth date")

    def _mobile(self) -> str:
        while True:
            number = self.rng.choice(_MOBILE_PREFIXES) + f"{self.rng.randrange(0, 10**8):08d}"
            if number not in self._phones:
                self._phones.add(number)
                return number

    def _give_phones(self, hh: Household, on: date) -> None:
        # Children and many of the very old give a parent's or a child's number: a phone is household
        # evidence, not personal evidence.
        adults = [p for p in hh.members if 18 <= p.age(on) < 75]
        for p in hh.members:
            if p.phones:
                continue
            if p.age(on) >= 18 and (p.age(on) < 75 or not adults or self.rng.random() < 0.5):
                p.phones = [(on, self._mobile())]
        for p in hh.members:
            if not p.phones:
                carer = next((a for a in adults if a.phones), None) or next(
                    (a for a in hh.members if a.phones), None
                )
                p.phones = [(on, carer.phones[0][1] if carer else self._mobile())]

    def _cards(self, p: Person, village: str) -> None:
        r = self.rng
        p.health_card = f"{village[:6]}{r.randrange(10**12, 10**13)}"
        p.insurance = f"{village[:4]}{r.randrange(10**9, 10**10)}"
        p.record_no = f"{village}{p.key % 100000:05d}"

    # -- the simulated years ------------------------------------------------------------------------
    def _simulate(self, hh: Household) -> None:
        r = self.rng
        years = (self.end - self.start).days / 365.25
        demo = self.conf["simulation"]
        birth_rate = float(demo["fertility_per_woman_year"])
        twin_rate = float(self.conf["twins"]["twin_deliveries_per_1000"]) / 1000
        move_in = float(demo["moved_in_share"])
        move_out = float(demo["moved_out_per_year"])
        move_within = float(demo["moved_within_per_year"])
        phone_change = float(demo["phone_change_per_year"])
        span = (self.end - self.start).days
        # Households arriving during the simulation: their life here starts later.
        if r.random() < move_in:
            arrival = self.start + timedelta(days=r.randrange(30, span))
            for p in hh.members:
                p.moved_in = arrival
                p.addresses = [(arrival, *p.addresses[0][1:])]
        elif r.random() < move_out * years:
            leave = self.start + timedelta(days=r.randrange(30, span))
            for p in hh.members:
                p.moved_out = leave
        if r.random() < move_within * years:
            when = self.start + timedelta(days=r.randrange(60, span))
            village = self._places.draw(r)
            house = self._house(village)
            for p in hh.members:
                p.addresses.append((when, village, house))
        for p in list(hh.members):
            if r.random() < phone_change * years and p.age(self.start) >= 18:
                own = [q for q in hh.members if q.phones[0][1] == p.phones[0][1]]
                if own[0] is p:
                    new = self._mobile()
                    when = self.start + timedelta(days=r.randrange(30, span))
                    for q in own:  # the people who gave this number give the new one from then on
                        q.phones.append((when, new))
        # Births: each woman 20–42 of a couple has a yearly chance of a baby (twins sometimes).
        for mother in [p for p in hh.members if not p.male and p.spouse is not None]:
            day = self.start
            while day < self.end:
                age = mother.age(day)
                if 20 <= age <= 42 and r.random() < birth_rate and mother.present(day):
                    birth = day + timedelta(days=r.randrange(0, 365))
                    if birth < self.end:
                        self._baby(hh, mother, birth, twins=r.random() < twin_rate)
                        day = birth + timedelta(days=400)
                        continue
                day += timedelta(days=365)
        self._deaths(hh)

    def _baby(self, hh: Household, mother: Person, birth: date, twins: bool) -> None:
        father = next((p for p in hh.members if p.key == mother.spouse), None)
        made: list[Person] = []
        for _ in range(2 if twins else 1):
            male = self.rng.random() < self.conf["births"]["newborn_male_percent_2021"] / 100
            baby = self._new_person(hh.key, male, birth)
            surname = father if father else mother
            baby.family, baby.family_py = surname.family, surname.family_py
            given = self.names.given_for(birth.year, male).draw(self.rng)
            baby.given, baby.given_py = given.text, given.pinyin
            baby.mother, baby.father = mother.key, father.key if father else None
            village, house = mother.address_on(birth)
            baby.addresses = [(birth, village, house)]
            baby.phones = [(birth, mother.phone_on(birth))]
            baby.ethnicity = mother.ethnicity
            baby.id_number = self._unique_id(village[:6], birth, male)
            self._cards(baby, village)
            baby.moved_out = mother.moved_out
            made.append(baby)
        if twins:
            made[0].twin, made[1].twin = made[1].key, made[0].key
            if made[0].given == made[1].given:
                made[1].given, made[1].given_py = self._other_given(made[1])
        hh.members.extend(made)

    def _other_given(self, p: Person) -> tuple[str, str]:
        for _ in range(20):
            g = self.names.given_for(p.birth.year, p.male).draw(self.rng)
            if g.text != p.given:
                return g.text, g.pinyin
        return p.given + "二", p.given_py + "er"

    def _deaths(self, hh: Household) -> None:
        mortality = self.conf["deaths"]["age_specific"]
        lows = self._mortality_lows
        male_rates = mortality["male"]
        female_rates = mortality["female"]
        for p in hh.members:
            day = max(self.start, p.birth)
            while day < self.end:
                age = p.age(day)
                group = max(0, bisect_left(lows, age + 1) - 1)
                rate = (male_rates if p.male else female_rates)[min(group, len(male_rates) - 1)] / 1000
                if self.rng.random() < rate:
                    when = day + timedelta(days=self.rng.randrange(0, 365))
                    if when < self.end and p.present(when):
                        p.death = when
                        band = 0 if age < 15 else 1 if age < 45 else 2 if age < 65 else 3
                        p.death_cause = self._death_causes[band].draw(self.rng)
                    break
                day += timedelta(days=365)
