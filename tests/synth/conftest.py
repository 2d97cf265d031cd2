"""A small synthetic region generated once per test session, shared by the synth tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rhip.synth.run import Options, Summary, synthesize

REGION_PEOPLE = 1500


@pytest.fixture(scope="session")
def region_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    """1,500 residents over four years, every format."""
    out = tmp_path_factory.mktemp("synth") / "region"
    summary = synthesize(Options(out=out, people=REGION_PEOPLE, seed=11, workers=2))
    return out, summary
