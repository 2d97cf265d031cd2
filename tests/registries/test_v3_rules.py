"""The HL7 v3 organization service writes through the registries' rules: a wrong USCC is an AE."""

from __future__ import annotations

import pytest

from exchange.hl7v3.helpers import GOLDEN, ack_of, detail_text, send  # tests/ is on sys.path
from rhip.bootstrap.container import Platform
from rhip.registries.fhir_port import calling, matches
from rhip.registries.identifiers import INSTITUTION_CODE, USCC

GOOD_USCC = "1251070410744447X1"  # the golden request's (valid)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_registration_with_a_wrong_uscc_is_refused_and_a_right_one_stored(platform: Platform) -> None:
    assert platform.exchange is not None
    (path,) = GOLDEN.glob("01-*.request.xml")
    register = path.read_bytes()
    assert GOOD_USCC.encode() in register
    wrong = register.replace(GOOD_USCC.encode(), (GOOD_USCC[:17] + "2").encode())
    answer = send(platform.exchange.hl7v3, wrong)
    assert ack_of(answer)[0] == "AE" and "check character" in detail_text(answer)
    fhir = calling(platform.fhir)
    assert matches(fhir("GET", "Organization", [("identifier", f"{USCC}|{GOOD_USCC[:17]}2")])) == []
    assert ack_of(send(platform.exchange.hl7v3, register))[0] == "AA"
    stored = matches(fhir("GET", "Organization", [("identifier", f"{USCC}|{GOOD_USCC}")]))
    assert len(stored) == 1 and any(i["system"] == INSTITUTION_CODE for i in stored[0]["identifier"])
