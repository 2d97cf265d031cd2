"""Labels for showing a CDA document to people, in Chinese (zh, the default) and English (en)."""

from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "document": "临床文档",
        "section": "章节",
        "patient": "患者",
        "sex": "性别",
        "birth": "出生日期",
        "identifiers": "标识",
        "author": "作者",
        "custodian": "保管机构",
        "recipient": "接收机构",
        "legal": "审核签名",
        "encounter": "就诊",
        "date": "文档日期",
        "confidentiality": "密级",
        "document_id": "文档编号",
        "unrendered": "非结构化文档内容，无法在此显示",
        "no_entries": "（本章节无内容）",
        "id:2.16.156.10011.1.2": "健康档案编号",
        "id:2.16.156.10011.1.3": "身份证号",
        "id:2.16.156.10011.1.11": "门诊号",
        "id:2.16.156.10011.1.12": "住院号",
        "id:2.16.156.10011.1.13": "病案号",
        "id:2.16.156.10011.1.15": "医保卡号",
        "id:2.16.156.10011.1.19": "健康卡号",
        "id:2.16.156.10011.1.24": "电子申请单编号",
        "id:2.16.156.10011.1.32": "检查报告单号",
        "id:2.16.156.10011.1.33": "检验报告单号",
    },
    "en": {
        "document": "Clinical document",
        "section": "Section",
        "patient": "Patient",
        "sex": "Sex",
        "birth": "Date of birth",
        "identifiers": "Identifiers",
        "author": "Author",
        "custodian": "Custodian",
        "recipient": "Recipient",
        "legal": "Legal authenticator",
        "encounter": "Encounter",
        "date": "Document date",
        "confidentiality": "Confidentiality",
        "document_id": "Document id",
        "unrendered": "Unstructured content that cannot be shown here",
        "no_entries": "(this section is empty)",
        "id:2.16.156.10011.1.2": "Health record no.",
        "id:2.16.156.10011.1.3": "Resident ID",
        "id:2.16.156.10011.1.11": "Outpatient no.",
        "id:2.16.156.10011.1.12": "Inpatient no.",
        "id:2.16.156.10011.1.13": "Case no.",
        "id:2.16.156.10011.1.15": "Insurance card no.",
        "id:2.16.156.10011.1.19": "Health card no.",
        "id:2.16.156.10011.1.24": "Order no.",
        "id:2.16.156.10011.1.32": "Exam report no.",
        "id:2.16.156.10011.1.33": "Lab report no.",
    },
}

# GB/T 2261.1 sex codes.
SEX: dict[str, dict[str, str]] = {
    "zh": {"0": "未知的性别", "1": "男", "2": "女", "9": "未说明的性别"},
    "en": {"0": "Unknown", "1": "Male", "2": "Female", "9": "Not stated"},
}

# HL7 Confidentiality (2.16.840.1.113883.5.25).
CONFIDENTIALITY: dict[str, dict[str, str]] = {
    "zh": {"N": "正常", "R": "限制", "V": "极限", "L": "低", "M": "中", "U": "不限"},
    "en": {
        "N": "Normal",
        "R": "Restricted",
        "V": "Very restricted",
        "L": "Low",
        "M": "Moderate",
        "U": "Unrestricted",
    },
}
