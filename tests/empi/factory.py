"""Build Patients and their features for EMPI tests, with the fields a registration desk fills in."""

from __future__ import annotations

from itertools import count
from typing import Any

from rhip.empi.features import Features, extract

ID_CARD = "urn:oid:2.16.156.10011.1.3"
_ids = count(1)


def check_char(first17: str) -> str:
    """The GB 11643 check character (written independently of the code under test)."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return "10X98765432"[total % 11]


def id_number(area: str, birth: str, seq: int) -> str:
    """A valid 18-digit ID number (odd ``seq`` for men)."""
    first17 = f"{area}{birth.replace('-', '')}{seq:03d}"
    return first17 + check_char(first17)


def patient(
    family: str = "张",
    given: str = "伟",
    birth: str = "1980-03-15",
    sex: str = "male",
    id_no: str | None = None,
    phone: str | None = "13800138000",
    village: str | None = "510703001003",
    house: str = "1组1号",
    mrn: str = "urn:rhip:mrn:A",
    twin: bool = False,
    pid: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A Patient as an institution sends it."""
    pid = pid or f"p{next(_ids)}"
    identifiers = [{"system": mrn, "value": pid.upper()}]
    if id_no:
        identifiers.append({"system": ID_CARD, "value": id_no})
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": identifiers,
        "name": [{"use": "official", "text": family + given, "family": family, "given": [given]}],
        "gender": sex,
        "birthDate": birth,
        **extra,
    }
    if phone:
        resource["telecom"] = [{"system": "phone", "value": phone}]
    if village:
        resource["address"] = [
            {
                "use": "home",
                "text": f"四川省绵阳市涪城区{house}",
                "line": [house],
                "district": "涪城区",
                "city": "绵阳市",
                "state": "四川省",
                "extension": [{"url": "urn:rhip:ext:division", "valueCode": village}],
            }
        ]
    if twin:
        resource["multipleBirthBoolean"] = True
    return resource


def features(**kwargs: Any) -> Features:
    """The features of :func:`patient`."""
    return extract(patient(**kwargs))
