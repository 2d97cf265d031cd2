"""Organizations of an institution and of a district, read from the store and cached."""

from __future__ import annotations

from rhip.security.lookup import StoreLookup, TtlCache

INSTITUTION_CODE_SYSTEM = "urn:oid:2.16.156.10011.1.5"  # 医疗机构代码 (WS 218)
DIVISION_EXTENSION = "urn:rhip:ext:division"  # GB/T 2260 (and township/village) division code of an address


class Directory:
    """Which Organization resources stand for an institution code, and which lie in a district."""

    def __init__(self, lookup: StoreLookup, ttl_s: float = 300.0) -> None:
        self.lookup = lookup
        self._institutions: TtlCache[str, tuple[str, ...]] = TtlCache(ttl_s, 10_000)
        self._districts: TtlCache[str, tuple[str, ...]] = TtlCache(ttl_s, 1_000)

    def organizations(self, institution: str | None, organization: str | None = None) -> tuple[str, ...]:
        """Ids of the Organizations that carry the institution's code (plus a known one)."""
        found: tuple[str, ...] = ()
        if institution:
            found = self._institutions.get(institution, lambda: self._by_code(institution))
        if organization and organization not in found:
            found = (*found, organization)
        return found

    def _by_code(self, code: str) -> tuple[str, ...]:
        params = [("identifier", f"{INSTITUTION_CODE_SYSTEM}|{code}")]
        return tuple(sorted(m.id for m in self.lookup.each("Organization", params, limit=1000)))

    def district_organizations(self, district: str) -> tuple[str, ...]:
        """Ids of the Organizations whose address lies in a division (GB/T 2260 code prefix)."""
        return self._districts.get(district, lambda: self._in_district(district))

    def _in_district(self, district: str) -> tuple[str, ...]:
        out = []
        for stored in self.lookup.each("Organization", []):
            resource = stored.resource()
            for address in resource.get("address") or ():
                codes = [
                    str(e.get("valueCode", ""))
                    for e in address.get("extension") or ()
                    if isinstance(e, dict) and e.get("url") == DIVISION_EXTENSION
                ]
                if any(code.startswith(district) for code in codes):
                    out.append(stored.id)
                    break
        return tuple(sorted(out))

    def clear(self) -> None:
        """Forget cached answers (an Organization changed)."""
        self._institutions.clear()
        self._districts.clear()
