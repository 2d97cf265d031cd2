"""Care-services registries (机构人员注册, IHE mCSD): Organization, Location, Practitioner, PractitionerRole
and HealthcareService as the region keeps them — identifier systems and their rules, the search parameters
of the directory (pinyin, division), CSV import and export, and the institution-code resolver.

The resources themselves are FHIR resources in the store; this package reaches them only through the
platform's FHIR service (authorised and audited), never the store.
"""
