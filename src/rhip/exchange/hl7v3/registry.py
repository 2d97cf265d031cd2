"""The interactions this platform serves: interaction id → handler, and what the WSDL says about each.

Service names (``PatientInfoRegister`` …) are those of the hospital-platform interaction specification
(cn-standards.md §1); the platforms' ``HIPMessageServer(action, message)`` operation names them in ``action``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rhip.exchange.hl7v3 import documents, organization, person, person_query, provider, terminology
from rhip.exchange.hl7v3.ack import ACK_INTERACTION
from rhip.exchange.hl7v3.context import Handler

HANDLERS: dict[str, Handler] = {
    "PRPA_IN201311UV02": person.record_person,
    "PRPA_IN201314UV02": person.record_person,
    "PRPA_IN201304UV02": person.merge_persons,
    "PRPA_IN201305UV02": person_query.query_persons,
    "PRPM_IN401030UV01": organization.record_organization,
    "PRPM_IN403010UV01": organization.record_organization,
    "PRPM_IN406010UV01": organization.query_organizations,
    "PRPM_IN301010UV01": provider.record_provider,
    "PRPM_IN303010UV01": provider.record_provider,
    "PRPM_IN306010UV01": provider.query_providers,
    "PRVS_IN000001UV01": terminology.register_terminology,
    "PRVS_IN000002UV01": terminology.update_terminology,
    "PRVS_IN000003UV01": terminology.query_terminology,
    "RCMR_IN000002UV02": documents.register_document,
    "RCMR_IN000029UV01": documents.query_documents,
    "RCMR_IN000031UV01": documents.retrieve_document,
}


@dataclass(frozen=True)
class Service:
    """One interaction as the WSDL and the service paths describe it."""

    interaction: str
    action: str  # the service name (the HIPMessageServer action)
    group: str  # the path segment under /hl7v3/ (person, organization, provider, terminology, document)
    answer: str  # the interaction of the answer
    title: str


SERVICES: dict[str, Service] = {
    s.interaction: s
    for s in (
        Service("PRPA_IN201311UV02", "PatientInfoRegister", "person", ACK_INTERACTION, "个人信息注册"),
        Service("PRPA_IN201314UV02", "PatientInfoUpdate", "person", ACK_INTERACTION, "个人信息更新"),
        Service("PRPA_IN201304UV02", "PatientInfoMerge", "person", ACK_INTERACTION, "个人信息合并"),
        Service("PRPA_IN201305UV02", "PatientInfoQuery", "person", "PRPA_IN201306UV02", "个人信息查询"),
        Service(
            "PRPM_IN401030UV01",
            "OrganizationInfoRegister",
            "organization",
            ACK_INTERACTION,
            "医疗卫生机构注册",
        ),
        Service(
            "PRPM_IN403010UV01", "OrganizationInfoUpdate", "organization", ACK_INTERACTION, "医疗卫生机构更新"
        ),
        Service(
            "PRPM_IN406010UV01",
            "OrganizationInfoQuery",
            "organization",
            "PRPM_IN406110UV01",
            "医疗卫生机构查询",
        ),
        Service("PRPM_IN301010UV01", "ProviderInfoRegister", "provider", ACK_INTERACTION, "医疗卫生人员注册"),
        Service("PRPM_IN303010UV01", "ProviderInfoUpdate", "provider", ACK_INTERACTION, "医疗卫生人员更新"),
        Service(
            "PRPM_IN306010UV01", "ProviderInfoQuery", "provider", "PRPM_IN306011UV01", "医疗卫生人员查询"
        ),
        Service("PRVS_IN000001UV01", "TerminologyRegister", "terminology", ACK_INTERACTION, "术语注册"),
        Service("PRVS_IN000002UV01", "TerminologyUpdate", "terminology", ACK_INTERACTION, "术语更新"),
        Service("PRVS_IN000003UV01", "TerminologyQuery", "terminology", "PRVS_IN000004UV01", "术语查询"),
        Service("RCMR_IN000002UV02", "DocumentRegister", "document", ACK_INTERACTION, "文档注册"),
        Service("RCMR_IN000029UV01", "DocumentAccess", "document", "RCMR_IN000030UV01", "文档检索"),
        Service("RCMR_IN000031UV01", "DocumentRetrieve", "document", "RCMR_IN000032UV01", "文档调阅"),
    )
}

GROUPS = frozenset(s.group for s in SERVICES.values())
