"""The identifier systems of the registries and their rules: one place that names them.

- 统一社会信用代码 (USCC, GB 32100-2015): 18 characters from the 31-character set (digits and capitals
  without I, O, S, V, Z); 1 registrar (登记管理部门), 1 kind (机构类别), 6 area (GB/T 2260), 9 organization
  code (主体标识码, GB 11714: 8 characters and its own check character), 1 check character (modulo 31).
  Both check characters are verified.
- 医疗卫生机构代码 (institution code, WS 218; urn:oid:2.16.156.10011.1.5): the region's key for an institution.
- 医疗机构执业许可证登记号 and 医师/护士执业证书编码: no public standard states their structure with
  authority (third-party pages describe a 22-character institution code and a 15-digit doctor's licence
  but disagree on the parts), so only their characters and length are checked (docs/registries.md §2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INSTITUTION_CODE = "urn:oid:2.16.156.10011.1.5"  # 医疗卫生机构代码 (WS 218)
USCC = "urn:rhip:sid:uscc"  # 统一社会信用代码 (GB 32100-2015)
INSTITUTION_LICENCE = "urn:rhip:sid:medical-institution-licence"  # 医疗机构执业许可证登记号
PRACTITIONER_LICENCE = "urn:rhip:sid:practitioner-licence"  # 医师/护士执业证书编码
STAFF_NO = "urn:oid:2.16.156.10011.1.4"  # 医务人员工号 (assigned by the institution: assigner)
# A place's or a service's code is unique within its institution: the system names the institution.
LOCATION_PREFIX = "urn:rhip:sid:location:"  # + institution code: Location.identifier (科室、场所编码)
SERVICE_PREFIX = "urn:rhip:sid:service:"  # + institution code: HealthcareService.identifier
DEPARTMENT_SYSTEM = "urn:oid:2.16.156.10011.2.3.2.62"  # 科室分类 (a Location's type, as the region writes it)
SERVICE_CATEGORY = "http://terminology.hl7.org/CodeSystem/service-category"
DIVISION_EXTENSION = "urn:rhip:ext:division"  # GB/T 2260 (and township/village) division code of an address
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
KIND_SYSTEM = "urn:rhip:cs:institution-kind"  # the region's institution kinds (KINDS)
TITLE_SYSTEM = "urn:rhip:cs:practitioner-role"  # professional titles (主治医师 …)

# GB 32100-2015 §4 (code set) and §5 (check character): weights 3^i mod 31.
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11714-1997: the organization code's check character over 8 characters (letters A=10 … Z=35).
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # institution codes, licences, staff numbers
DIVISION_CODE = re.compile(r"^[0-9]{2,12}$")  # GB/T 2260 (6) and the township (9) / village (12) codes


@dataclass(frozen=True)
class IdentifierRule:
    """An identifier system of the registries: its name and how a value is checked."""

    system: str
    name: str  # Chinese name
    english: str
    resource_types: tuple[str, ...]


RULES: tuple[IdentifierRule, ...] = (
    IdentifierRule(INSTITUTION_CODE, "医疗卫生机构代码", "institution code", ("Organization",)),
    IdentifierRule(USCC, "统一社会信用代码", "unified social credit code", ("Organization",)),
    IdentifierRule(INSTITUTION_LICENCE, "医疗机构执业许可证登记号", "institution licence", ("Organization",)),
    IdentifierRule(PRACTITIONER_LICENCE, "执业证书编码", "practitioner licence", ("Practitioner",)),
    IdentifierRule(STAFF_NO, "医务人员工号", "staff number", ("Practitioner",)),
)


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters; ValueError outside the code set."""
    if len(first17) != 17 or any(ch not in USCC_CHARS for ch in first17):
        raise ValueError("a USCC's first 17 characters come from its 31-character set")
    total = sum(USCC_CHARS.index(ch) * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31]


def organization_code_check_char(first8: str) -> str:
    """The GB 11714 check character of an organization code's first 8 characters."""
    if len(first8) != 8 or any(ch not in _ORG_CHARS for ch in first8):
        raise ValueError("an organization code's first 8 characters are digits or capitals")
    c = 11 - sum(_ORG_CHARS.index(ch) * w for ch, w in zip(first8, _ORG_WEIGHTS, strict=True)) % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def uscc_problem(value: str) -> str | None:
    """Why a USCC is not valid (None when it is): length, characters, either check character."""
    if len(value) != 18:
        return "a USCC has 18 characters"
    if any(ch not in USCC_CHARS for ch in value):
        return "a USCC uses digits and capitals other than I, O, S, V, Z"
    if not value[2:8].isdigit():
        return "characters 3-8 of a USCC are the area code (6 digits)"
    if organization_code_check_char(value[8:16]) != value[16]:
        return "the organization code inside the USCC (characters 9-17) has a wrong check character"
    if uscc_check_char(value[:17]) != value[17]:
        return "the USCC's check character (the 18th) is wrong"
    return None


def is_valid_uscc(value: str) -> bool:
    """Whether ``value`` is an 18-character USCC with both check characters right."""
    return uscc_problem(value) is None


def is_code(value: str) -> bool:
    """Whether ``value`` is acceptable as an institution code, licence or staff number (1-64 characters)."""
    return CODE.match(value) is not None
