"""Train the EMPI model that ships with rhip (src/rhip/empi/data/model-cn.json) on a synthetic region.

The default serves a region until it has trained its own (``rhip empi train``). It is learnt without
labels, as a region's would be, from the Patients of ``rhip synth --people 20000 --seed 7 --formats fhir``:

    python scripts/train_default_empi_model.py var/empi-bench-20000-7
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from rhip.empi.features import extract
from rhip.empi.training import TrainingOptions, train

OUT = Path(__file__).resolve().parent.parent / "src" / "rhip" / "empi" / "data" / "model-cn.json"


def main() -> None:
    """Read the region's Patients (latest version of each), train, write the model."""
    folder = Path(sys.argv[1])
    latest: dict[str, dict] = {}
    for file in sorted((folder / "fhir").glob("*.ndjson")):
        for line in file.read_bytes().splitlines():
            if b'"resourceType":"Patient"' in line:
                patient = orjson.loads(line)
                latest[patient["id"]] = patient
    records = [extract(p) for p in latest.values()]
    model = train(records, TrainingOptions(profile="cn"), version="default-cn-1", progress=print)
    model.trained["source"] = (
        f"rhip synth --formats fhir, {folder.name} ({len(records)} Patients), no labels used"
    )
    OUT.write_bytes(model.to_json())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
