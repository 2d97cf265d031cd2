"""Identifier systems and code systems the synthetic region writes (DESIGN.md §4, cn-standards.md §3).

National OIDs where the standards give one. Where no official OID is known (统一社会信用代码, the
licence numbers, the immunization programme's vaccine codes, the notifiable-disease card codes) the
system is a ``urn:rhip:`` namespace of our own, so that nothing pretends to be an official identifier.
"""

from __future__ import annotations

# -- identifiers of residents (Identifier.system) ----------------------------------------------------
ID_CARD = "urn:oid:2.16.156.10011.1.3"  # 居民身份证号
HEALTH_RECORD = "urn:oid:2.16.156.10011.1.2"  # 城乡居民健康档案编号
HEALTH_CARD = "urn:oid:2.16.156.10011.1.19"  # 居民健康卡号
INSURANCE_CARD = "urn:oid:2.16.156.10011.1.15"  # 医保卡号
OUTPATIENT_NO = "urn:oid:2.16.156.10011.1.11"  # 门诊号 (value unique within the sending institution)
INPATIENT_NO = "urn:oid:2.16.156.10011.1.12"  # 住院号 (value unique within the sending institution)


def mrn_system(institution_code: str) -> str:
    """The local patient-id namespace of one institution (its MRN, 院内患者ID)."""
    return f"urn:rhip:mrn:{institution_code}"


# -- identifiers of institutions and staff -----------------------------------------------------------
USCC = "urn:rhip:sid:uscc"  # 统一社会信用代码 (GB 32100); no OID known
INSTITUTION_LICENCE = "urn:rhip:sid:medical-institution-licence"  # 医疗机构执业许可证登记号
ORGANIZATION_OID = "urn:oid:2.16.156.10011.1.5"  # 医疗卫生机构 id as used in the HL7 v3 samples
STAFF_NO = "urn:oid:2.16.156.10011.1.4"  # 医务人员工号 (value unique within the institution)
PRACTITIONER_LICENCE = "urn:rhip:sid:practitioner-licence"  # 医师/护士执业证书编码
DIVISION = "urn:rhip:cs:gb-t-2260"  # GB/T 2260 / 统计用区划代码 (no OID known, cn-standards §3.3)

# -- code systems ------------------------------------------------------------------------------------
SEX = "urn:oid:2.16.156.10011.2.3.3.4"  # GB/T 2261.1
MARITAL = "urn:oid:2.16.156.10011.2.3.3.5"  # GB/T 2261.2
ETHNICITY = "urn:oid:2.16.156.10011.2.3.3.3"  # GB 3304
OCCUPATION = "urn:oid:2.16.156.10011.2.3.3.7"  # GB/T 6565
ID_DOCUMENT_TYPE = "urn:oid:2.16.156.10011.2.3.1.1"  # CV02.01.101
ICD10 = "urn:oid:2.16.156.10011.2.3.3.11"  # ICD-10 (国家临床版)
ICD9CM3 = "urn:oid:2.16.156.10011.2.3.3.12"  # ICD-9-CM-3 procedures
DEPARTMENT = "urn:oid:2.16.156.10011.2.3.2.62"  # 科室分类
DOCUMENT_TYPE = "urn:oid:2.16.156.10011.2.4"  # WS/T 483 HSD… and WS/T 500 C00nn codes
DATA_ELEMENT = "urn:oid:2.16.156.10011.2.2.1"  # WS 363 data elements
NIP_VACCINE = "urn:rhip:cs:nip-vaccine"  # 国家免疫规划疫苗 codes (cn-standards §5; unverified)
NOTIFIABLE_DISEASE = "urn:rhip:cs:notifiable-disease"  # 传染病报告卡 disease codes (cn-standards §5)
CASE_CLASSIFICATION = "urn:rhip:cs:notifiable-case-class"  # 1 临床诊断 2 确诊 3 疑似 4 病原携带者
SERVICE_TYPE = "urn:rhip:cs:service-type"  # the kind of visit (门诊, 高血压随访, 产前检查 …), see care.py
PRACTITIONER_ROLE = "urn:rhip:cs:practitioner-role"  # 医师, 护士, 药师 … with qualification level
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"


def local_code_system(institution_code: str, table: str) -> str:
    """An institution's own code table (its lab item codes, drug codes …)."""
    return f"urn:rhip:cs:local:{institution_code}:{table}"


# -- FHIR terminology ---------------------------------------------------------------------------------
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
