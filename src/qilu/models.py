"""Every table, imported in dependency order, so migrations and tests see the whole schema."""

from qilu.audit.models import AuditChainHead, AuditEvent
from qilu.demo.models import SeedRun
from qilu.identity.models import (
    Account,
    Department,
    EnterpriseAgent,
    LegalEntity,
    OidcAuthorizationCode,
    OidcClient,
    OidcToken,
    Person,
    RecoveryCode,
    SignInFailure,
    SigningKey,
    StaffMember,
    StaffRole,
    WebSession,
)

__all__ = [
    "Account",
    "AuditChainHead",
    "AuditEvent",
    "Department",
    "EnterpriseAgent",
    "LegalEntity",
    "OidcAuthorizationCode",
    "OidcClient",
    "OidcToken",
    "Person",
    "RecoveryCode",
    "SeedRun",
    "SignInFailure",
    "SigningKey",
    "StaffMember",
    "StaffRole",
    "WebSession",
]
