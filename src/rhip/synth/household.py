"""The life of one household over the simulated years, rendered into a ``Chunk``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import orjson

from rhip.synth import catalog
from rhip.synth.care import Clinic
from rhip.synth.epidemics import Notifiable
from rhip.synth.output import Chunk
from rhip.synth.population import Household, Person
from rhip.synth.programmes import Programmes
from rhip.synth.region import Region
from rhip.synth.registration import Registrar
from rhip.synth.rng import stream

_INJURY_DEATHS = ("V89.2", "W19", "X70")


@dataclass
class Context:
    """What every household's generation shares: the region, the years, the planned outbreak cases."""

    region: Region
    seed: int
    start: date
    end: date
    forced: dict[int, list[tuple[str, date, str]]]  # person key -> (disease, onset, outbreak id)
    documents: bool = True


def generate(ctx: Context, hh: Household) -> Chunk:
    """Generate the care of a household's members."""
    rng = stream(ctx.seed, 0xCA7E, hh.key)
    people = {p.key: p for p in hh.members}
    registrar = Registrar(ctx.region, rng, people)
    chunk = Chunk(hh.key, ctx.region, registrar, rng, ctx.documents)
    clinic = Clinic(ctx.region, rng, chunk, ctx.start, ctx.end, registrar)
    programmes = Programmes(clinic)
    notifiable = Notifiable(clinic)
    immunizations: list[bytes] = []
    for p in hh.members:
        first = max(ctx.start, p.birth, p.moved_in or ctx.start)
        last = min(ctx.end, p.death or ctx.end, p.moved_out or ctx.end)
        if first >= last:
            continue
        programmes.chronic(p, first, last)
        clinic.acute_care(p, first, last)
        programmes.elderly_checks(p, first, last)
        if p.age(first) < 7:
            programmes.child_checks(p, first, last)
            for vaccine, dose, due, given in programmes.immunizations(p, first, last):
                immunizations.append(
                    f"{p.id},{vaccine},{dose},{due.isoformat()},{given.isoformat() if given else ''}\n".encode()
                )
        programmes.allergies(p, first, last)
        urban = ctx.region.divisions.by_code[p.address_on(first)[0]].urban
        for disease, onset in notifiable.baseline(p, first, last, urban):
            notifiable.report(p, disease, onset, "", rng)
        for disease, onset, outbreak in ctx.forced.get(p.key, ()):
            notifiable.report(p, disease, onset, outbreak, rng)
        if p.death is not None and first <= p.death < ctx.end:
            _death(clinic, p)
    for mother in hh.members:
        babies = [b for b in hh.members if b.mother == mother.key and ctx.start <= b.birth < ctx.end]
        for birth in sorted({b.birth for b in babies}):
            programmes.pregnancy(mother, birth, [b for b in babies if b.birth == birth])
    chunk.finish()
    chunk.truth_persons = [orjson.dumps(person_truth(ctx.region, p)) + b"\n" for p in hh.members]
    chunk.immunizations = immunizations
    return chunk


def _death(clinic: Clinic, p: Person) -> None:
    """The last encounter: an emergency death for injuries, otherwise death in hospital."""
    assert p.death is not None
    names = {c["code"]: c["name"] for c in catalog.clinical()["death_cause"]}
    name = names.get(p.death_cause, p.death_cause)
    injury = p.death_cause in _INJURY_DEATHS
    day = p.death - timedelta(days=0 if injury else clinic.rng.randrange(1, 10))
    day = max(day, clinic.start)
    inst = clinic.institution(p, day, 2 if clinic.rng.random() < 0.6 else 3)
    clinic.admission(
        p,
        day,
        p.death_cause,
        name,
        "急诊科" if injury else "内科",
        None,
        inst=inst,
        stay=(p.death - day).days,
        death=True,
    )


def person_truth(region: Region, p: Person) -> dict[str, object]:
    """The ground-truth record of a person (who they really are, where they lived, what happened)."""
    return {
        "id": p.id,
        "household": p.household,
        "name": p.name,
        "family": p.family,
        "given": p.given,
        "pinyin": f"{p.family_py} {p.given_py}",
        "gender": "male" if p.male else "female",
        "birthDate": p.birth.isoformat(),
        "idNumber": p.id_number,
        "ethnicity": p.ethnicity,
        "maritalStatus": p.marital,
        "healthCard": p.health_card,
        "insuranceCard": p.insurance,
        "healthRecordNo": p.record_no,
        "addresses": [{"since": d.isoformat(), "village": v, "house": h} for d, v, h in p.addresses],
        "phones": [{"since": d.isoformat(), "number": n} for d, n in p.phones],
        "movedIn": p.moved_in.isoformat() if p.moved_in else None,
        "movedOut": p.moved_out.isoformat() if p.moved_out else None,
        "death": p.death.isoformat() if p.death else None,
        "deathCause": p.death_cause or None,
        "mother": f"P{p.mother:08d}" if p.mother else None,
        "father": f"P{p.father:08d}" if p.father else None,
        "twin": f"P{p.twin:08d}" if p.twin else None,
        "spouse": f"P{p.spouse:08d}" if p.spouse else None,
        "county": p.addresses[0][1][:6],
    }
