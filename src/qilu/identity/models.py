"""Tables of the population and legal-entity registers, departments and their staff.

These are the subjects of "one identifier": residents keyed by ID number, organisations by USCC.
The data platform publishes them as base libraries; identity adds accounts on top of them.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    Numeric,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qilu.db import Base, Id, UtcDateTime


class Person(Base):
    """A resident in the population register (人口库); identifiers encrypted (`qilu.pii`)."""

    __tablename__ = "persons"
    __table_args__ = (
        CheckConstraint("sex IN ('M', 'F')", name="sex"),
        CheckConstraint("status IN ('active', 'deceased', 'emigrated')", name="status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    id_number_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date] = mapped_column(Date)
    # Where the number was first issued (its first six digits) and where the person is registered
    # now (户籍地) differ for anyone who has moved.
    birth_division_code: Mapped[str] = mapped_column(String(6))
    household_division_code: Mapped[str] = mapped_column(String(6), index=True)
    address: Mapped[str] = mapped_column(String(200))
    ethnicity_code: Mapped[str] = mapped_column(String(2), default="01")  # GB 3304
    phone_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    # As the population register says: active, deceased (死亡) or emigrated (迁出 the province);
    # only an active resident registers, signs in or is named for an enterprise or a family.
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    status_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.now())


class LegalEntity(Base):
    """An organisation in the legal-entity register (法人库), keyed by its USCC (public data)."""

    __tablename__ = "legal_entities"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'deregistered', 'revoked')", name="status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    industry_code: Mapped[str] = mapped_column(String(1))  # GB/T 4754-2017 section (门类)
    division_code: Mapped[str] = mapped_column(String(6), index=True)
    address: Mapped[str] = mapped_column(String(200))
    legal_representative_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    registered_capital: Mapped[Decimal] = mapped_column(Numeric(18, 2))  # 万元
    established_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.now())

    legal_representative: Mapped[Person] = relationship()


class Department(Base):
    """A government department at province, city or county level (大数据局, 公安, …)."""

    __tablename__ = "departments"
    __table_args__ = (
        CheckConstraint("level IN ('province', 'city', 'county')", name="level"),
        UniqueConstraint("division_code", "kind", name="uq_departments_division_kind"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # e.g. 370102-market
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10))
    division_code: Mapped[str] = mapped_column(String(6), index=True)
    # The same kind of department one level up, which guides this one's work (业务指导).
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    # 撤并: the department that took this one over (its open cases, its items), and since when.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    merged_on: Mapped[date | None] = mapped_column(Date)

    parent: Mapped[Department | None] = relationship(remote_side=[id], foreign_keys=[parent_id])


class StaffMember(Base):
    """A resident who works for a department (a civil servant); roles arrive with accounts."""

    __tablename__ = "staff_members"
    __table_args__ = (UniqueConstraint("department_id", "person_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    title: Mapped[str] = mapped_column(String(50))

    department: Mapped[Department] = relationship()
    person: Mapped[Person] = relationship()


class Account(Base):
    """A resident's sign-in account, keyed by the person (so by the ID number): one each."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'disabled')", name="status"),
        CheckConstraint("assurance BETWEEN 2 AND 5", name="assurance"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Identity assurance of the registration (acr): 3 = name and ID number matched the register.
    assurance: Mapped[int] = mapped_column(Integer, default=3)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # TOTP second factor (RFC 6238): the secret SM4-encrypted; enabled once a code confirmed it.
    totp_secret_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # no code is accepted twice
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.now())

    person: Mapped[Person] = relationship()

    @property
    def has_second_factor(self) -> bool:
        return self.totp_enabled_at is not None


class RecoveryCode(Base):
    """One-time codes for when the authenticator is lost; only their SM3 hashes are kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SignInFailure(Base):
    """Recent failed sign-ins per account and per client address, and any temporary lock."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (CheckConstraint("scope IN ('account', 'address')", name="scope"),)

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebSession(Base):
    """A signed-in browser. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    assurance: Mapped[int] = mapped_column(Integer)  # acr reached when signing in
    authenticated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Password checked, second factor still owed: such a session opens nothing yet.
    second_factor_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    # The enterprise this browser currently acts for (re-checked on every request).
    acting_for_entity_id: Mapped[int | None] = mapped_column(ForeignKey("legal_entities.id"))
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))

    account: Mapped[Account] = relationship()
    acting_for: Mapped[LegalEntity | None] = relationship()

    @property
    def person_id(self) -> int:
        return self.account.person_id


class EnterpriseAgent(Base):
    """A legal representative's authorisation of another resident to act for the enterprise."""

    __tablename__ = "enterprise_agents"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    agent_person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    valid_until: Mapped[datetime] = mapped_column(UtcDateTime)
    granted_by_person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    entity: Mapped[LegalEntity] = relationship()
    agent: Mapped[Person] = relationship(foreign_keys=[agent_person_id])

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.valid_until > now


class FamilyProxy(Base):
    """亲友代办: a resident's authorisation of a family member to apply for them (the elderly
    relying on a child, say), for a time, revocable by either; like an enterprise's agent."""

    __tablename__ = "family_proxies"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    principal_person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    proxy_person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    relation: Mapped[str] = mapped_column(String(8))
    valid_until: Mapped[datetime] = mapped_column(UtcDateTime)
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    principal: Mapped[Person] = relationship(foreign_keys=[principal_person_id])
    proxy: Mapped[Person] = relationship(foreign_keys=[proxy_person_id])

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.valid_until > now


class StaffRole(Base):
    """A role a civil servant holds in their department (窗口受理, 审批, 数据管理, …)."""

    __tablename__ = "staff_roles"
    __table_args__ = (UniqueConstraint("staff_member_id", "role"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    staff_member_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    granted_by_person_id: Mapped[int | None] = mapped_column(BigInteger)

    staff_member: Mapped[StaffMember] = relationship()


class SigningKey(Base):
    """A key the OIDC provider signs tokens with; the private half SM4-encrypted.

    Published from creation, it signs from `activates_at` (after relying parties' JWKS caches
    have taken it in) until `retired_at`, and stays published until `unpublish_at`, when every
    token it signed has expired (`qilu.identity.signing_keys`).
    """

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    private_key_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    activates_at: Mapped[datetime] = mapped_column(UtcDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    unpublish_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OidcClient(Base):
    """A department system that signs its users in through Qilu (an OIDC relying party)."""

    __tablename__ = "oidc_clients"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))  # None: a public client
    name: Mapped[str] = mapped_column(String(100))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    # Clients of one sector see the same pseudonymous `sub` for a person; others see another.
    sector: Mapped[str] = mapped_column(String(100))
    is_first_party: Mapped[bool] = mapped_column(Boolean, default=False)  # no consent screen
    # A department's system that calls the data APIs on its own behalf (client credentials):
    # its department is who reads, and its requests per second are capped.
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    rate_per_second: Mapped[int | None] = mapped_column(Integer)  # None: the platform default
    # private_key_jwt (RFC 7523): the client's public keys; no shared secret is then kept.
    jwks: Mapped[dict[str, object] | None] = mapped_column(JSON)
    # Real-name scopes (id_number, phone) an administrator allowed this system to ask for.
    allowed_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    access_token_format: Mapped[str] = mapped_column(String(8), default="opaque")  # or "jwt"
    # RS256, or SM2 for systems that must verify 国密 signatures (the default names what the
    # previous release registers)
    id_token_alg: Mapped[str] = mapped_column(String(8), default="RS256", server_default="RS256")
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    frontchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    department: Mapped[Department | None] = relationship()

    @property
    def auth_method(self) -> str:
        """How it authenticates at the token endpoint."""
        if self.jwks is not None:
            return "private_key_jwt"
        return "none" if self.secret_hash is None else "client_secret_basic"


class OidcConsent(Base):
    """What a person agreed a system may know (the scopes), remembered so that signing in again,
    or silently, asks nothing; withdrawn from 我的账号."""

    __tablename__ = "oidc_consents"
    __table_args__ = (UniqueConstraint("account_id", "client_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OidcPushedRequest(Base):
    """A pushed authorization request (RFC 9126): the parameters a client sent straight to the
    provider, named by a one-time `request_uri` (its hash stored) the browser then carries."""

    __tablename__ = "oidc_pushed_requests"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    reference_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    client_id: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, str]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OidcAssertion(Base):
    """A client assertion's `jti` seen at the token endpoint, kept until the assertion expires so
    it cannot be replayed (RFC 7523 §3, item 7)."""

    __tablename__ = "oidc_assertions"
    __table_args__ = (UniqueConstraint("client_id", "jti"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    jti: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class OidcAuthorizationCode(Base):
    """A one-time code: only its hash is stored; a second use revokes what the first issued."""

    __tablename__ = "oidc_codes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    client_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    redirect_uri: Mapped[str] = mapped_column(String(500))
    scope: Mapped[str] = mapped_column(String(200))
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[datetime] = mapped_column(UtcDateTime)
    acr: Mapped[int] = mapped_column(Integer)
    acting_for_entity_id: Mapped[int | None] = mapped_column(ForeignKey("legal_entities.id"))
    web_session_id: Mapped[int | None] = mapped_column(BigInteger)  # the browser's session (sid)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    account: Mapped[Account] = relationship()
    acting_for: Mapped[LegalEntity | None] = relationship()


class OidcToken(Base):
    """Access and refresh tokens (hashes only). Refresh tokens rotate; `family` ties a chain of
    rotations together so that reusing a rotated-out one revokes the whole chain."""

    __tablename__ = "oidc_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    # None for a system's own token (client credentials): no person stands behind it.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    access_token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    refresh_token_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    scope: Mapped[str] = mapped_column(String(200))
    family: Mapped[str] = mapped_column(String(32), index=True)
    code_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    acr: Mapped[int] = mapped_column(Integer)
    acting_for_entity_id: Mapped[int | None] = mapped_column(ForeignKey("legal_entities.id"))
    auth_time: Mapped[datetime] = mapped_column(UtcDateTime)  # when the holder authenticated
    # The browser session it came from: signing out there ends it, unless it is offline_access.
    web_session_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_in: Mapped[int] = mapped_column(Integer)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the access token
    rotated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the refresh token

    account: Mapped[Account | None] = relationship()
    acting_for: Mapped[LegalEntity | None] = relationship()


class CrossDeviceSignIn(Base):
    """Signing in on a computer by confirming on a phone already signed in (扫码登录). The QR
    code carries `reference` (its hash stored); the computer waits holding `poll` (its hash
    stored, in a cookie only it has). One use, two minutes."""

    __tablename__ = "cross_device_sign_ins"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    reference_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    poll_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    check_code: Mapped[str] = mapped_column(String(4))  # shown on both screens, compared by eye
    desktop_address: Mapped[str | None] = mapped_column(String(64))
    desktop_agent: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))  # who confirmed
    assurance: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    refused: Mapped[bool] = mapped_column(Boolean, default=False)
    consumed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    account: Mapped[Account | None] = relationship()


class SmsCode(Base):
    """A one-time code sent by SMS as a second factor: only its hash kept, five minutes, five
    tries, and sending itself limited (one a minute, five an hour)."""

    __tablename__ = "sms_codes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class UpstreamSignIn(Base):
    """A sign-in sent to the upstream provider (`identity.federation`), waiting for its answer:
    what the answer must match. Ten minutes, one use."""

    __tablename__ = "upstream_sign_ins"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    state_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_path: Mapped[str] = mapped_column(String(512))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
