"""Every table, imported in dependency order, so migrations and tests see the whole schema."""

from qilu.audit.models import AuditChainHead, AuditEvent
from qilu.data.models import (
    DataLoad,
    DataRecord,
    DataResource,
    RecordChange,
    ResourceSchema,
    ShareGrant,
)
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
    "DataLoad",
    "DataRecord",
    "DataResource",
    "Department",
    "EnterpriseAgent",
    "LegalEntity",
    "OidcAuthorizationCode",
    "OidcClient",
    "OidcToken",
    "Person",
    "RecordChange",
    "RecoveryCode",
    "ResourceSchema",
    "SeedRun",
    "ShareGrant",
    "SignInFailure",
    "SigningKey",
    "StaffMember",
    "StaffRole",
    "WebSession",
]
