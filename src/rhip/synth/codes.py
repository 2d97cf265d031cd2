"""Check characters of institutional identifiers: organization code (GB 11714) and USCC (GB 32100)."""

from __future__ import annotations

_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def organization_code(body8: str) -> str:
    """A 9-character organization code (组织机构代码): 8 digits and the GB 11714 check character."""
    c = 11 - sum(int(ch) * w for ch, w in zip(body8, _ORG_WEIGHTS, strict=True)) % 11
    return body8 + ("X" if c == 10 else "0" if c == 11 else str(c))


def uscc(area: str, body8: str, registrar: str = "12") -> str:
    """A 统一社会信用代码: registrar and kind (12 = 机构编制, 事业单位), area code, organization code, check."""
    first17 = registrar + area + organization_code(body8)
    total = sum(_USCC_CHARS.index(ch) * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return first17 + _USCC_CHARS[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    """Whether an 18-character USCC has the right check character."""
    if len(code) != 18 or any(ch not in _USCC_CHARS for ch in code):
        return False
    total = sum(_USCC_CHARS.index(ch) * w for ch, w in zip(code[:17], _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31] == code[17]
