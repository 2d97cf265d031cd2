"""Everything the secured repository consults, built once by bootstrap."""

from __future__ import annotations

from dataclasses import dataclass

from rhip.security.alerts import GlassAlerts
from rhip.security.audit_port import AuditSink
from rhip.security.labels import SensitivityTable
from rhip.security.policy import AccessPolicy
from rhip.security.search_scope import SearchScoper


@dataclass
class Guard:
    """The policy, its search form, the audit trail, the alerts and the sensitivity labels."""

    policy: AccessPolicy
    scoper: SearchScoper
    audit: AuditSink
    alerts: GlassAlerts
    labels: SensitivityTable
