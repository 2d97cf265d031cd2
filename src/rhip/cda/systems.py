"""The FHIR identifier and code systems the CDA writers read (DESIGN.md §4, cn-standards.md §3).

These are the platform's conventions for how FHIR resources name residents, institutions, staff and
codes; the synthetic generator (``rhip.synth.systems``) writes the same values.
"""

from __future__ import annotations

# -- identifiers (Identifier.system) -------------------------------------------------------------------
ID_CARD = "urn:oid:2.16.156.10011.1.3"  # 居民身份证号
HEALTH_RECORD = "urn:oid:2.16.156.10011.1.2"  # 城乡居民健康档案编号
HEALTH_CARD = "urn:oid:2.16.156.10011.1.19"  # 居民健康卡号
INSURANCE_CARD = "urn:oid:2.16.156.10011.1.15"  # 医保卡号
OUTPATIENT_NO = "urn:oid:2.16.156.10011.1.11"  # 门诊号
INPATIENT_NO = "urn:oid:2.16.156.10011.1.12"  # 住院号
ORGANIZATION_OID = "urn:oid:2.16.156.10011.1.5"  # 医疗卫生机构
STAFF_NO = "urn:oid:2.16.156.10011.1.4"  # 医务人员工号
MRN_PREFIX = "urn:rhip:mrn:"  # an institution's own patient-id namespace (urn:rhip:mrn:<institution code>)

# -- code systems --------------------------------------------------------------------------------------
SEX = "urn:oid:2.16.156.10011.2.3.3.4"  # GB/T 2261.1
MARITAL = "urn:oid:2.16.156.10011.2.3.3.5"  # GB/T 2261.2
ETHNICITY = "urn:oid:2.16.156.10011.2.3.3.3"  # GB 3304
OCCUPATION = "urn:oid:2.16.156.10011.2.3.3.7"  # GB/T 6565
ICD10 = "urn:oid:2.16.156.10011.2.3.3.11"  # ICD-10 (国家临床版)
ICD9CM3 = "urn:oid:2.16.156.10011.2.3.3.12"  # ICD-9-CM-3 procedures
NOTIFIABLE_DISEASE = "urn:rhip:cs:notifiable-disease"  # 传染病报告卡 disease codes
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
