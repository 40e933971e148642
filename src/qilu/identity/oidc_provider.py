"""The OpenID Connect provider, built on Authlib's authorization server.

Authlib does the protocol (validation of requests, PKCE, grants, ID tokens, client assertions,
introspection); this module supplies the store, the keys and Qilu's rules: exact redirect-URI
matching, PKCE S256 required of public clients, one-time codes whose reuse revokes what they
issued, refresh tokens that rotate and whose reuse revokes their whole family, a pairwise `sub`
per sector, `sid` tying tokens to the browser session they came from, real-name claims only
under consent, optional JWT access tokens (RFC 9068), and audit entries for each token.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from authlib.common.security import generate_token
from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, JsonRequest
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.errors import InteractionRequiredError, LoginRequiredError
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import ColumnElement, Select, bindparam, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from qilu.audit.service import record
from qilu.digests import secret_digest
from qilu.errors import QiluError
from qilu.identity import assurance, roles
from qilu.identity.models import (
    Account,
    Department,
    LegalEntity,
    OidcAssertion,
    OidcAuthorizationCode,
    OidcClient,
    OidcToken,
    Person,
    WebSession,
)
from qilu.identity.service import id_number_of, person_subject, phone_of
from qilu.identity.signing_keys import (
    ID_TOKEN_LIFETIME,
    SM2,
    SigningKeyCache,
    sign_sm2_jwt,
    sm2_key,
    sm3_half_hash,
)
from qilu.pii import Vault

# What a system signing people in may ask for; any other scope is ignored (OIDC Core §3.1.2.1).
SCOPES = ("openid", "profile", "enterprise", "offline_access")
# Real-name scopes: released only to a system an administrator allowed them, with the person's
# agreement each time they are new to it, and every release audited in the person's data record.
REAL_NAME_SCOPES = {"id_number": "证件号码", "phone": "手机号码", "realname": "实名认证等级"}
CLAIM_LABELS = {
    "id_number": "证件号码",
    "phone_number": "手机号码",
    "realname_level": "实名认证等级",
}
SCOPE_LABELS = {
    "openid": "您的匿名标识（每个系统各不相同）",
    "profile": "姓名",
    "enterprise": "您代表的企业（名称与统一社会信用代码）",
    "offline_access": "在您退出后继续代您办理（长期授权）",
    **REAL_NAME_SCOPES,
}
# What a department's system may ask for with its own credentials (client_credentials).
SERVICE_SCOPES = ("data.read", "data.push")
CODE_LIFETIME = timedelta(minutes=1)
ACCESS_TOKEN_LIFETIME = 600
REFRESH_TOKEN_LIFETIME = timedelta(days=7)


class Client(ClientMixin):  # type: ignore[misc]
    """Authlib's view of a registered relying party."""

    def __init__(self, row: OidcClient):
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.row.redirect_uris[0] if len(self.row.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        if self.is_service:  # asking for nothing in particular means all it may have
            asked = (scope or "").split() or SERVICE_SCOPES
            return " ".join(s for s in asked if s in SERVICE_SCOPES)
        allowed = (*SCOPES, *(s for s in self.row.allowed_scopes if s in REAL_NAME_SCOPES))
        wanted = dict.fromkeys((scope or "").split())  # in order, once each
        return " ".join(s for s in wanted if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris  # exact match, character for character

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.secret_hash
        return stored is not None and secrets.compare_digest(stored, secret_digest(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.row.jwks is not None:
            return method == "private_key_jwt"
        if self.is_public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if self.is_service:
            return grant_type == "client_credentials"
        return grant_type in ("authorization_code", "refresh_token")

    @property
    def is_public(self) -> bool:
        return self.row.secret_hash is None and self.row.jwks is None

    @property
    def is_service(self) -> bool:
        """A department's system calling on its own behalf, not signing people in."""
        return self.row.department_id is not None


@dataclass
class Code:
    """Authlib's view of a stored authorization code."""

    row: OidcAuthorizationCode

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> str:
        return str(self.row.acr)

    def get_amr(self) -> list[str]:
        return ["pwd", "otp"] if self.row.acr >= 4 else ["pwd"]


class Token:
    """Authlib's view of a stored token (for the refresh grant)."""

    def __init__(self, row: OidcToken, *, refresh: bool = True):
        self.row = row
        self.refresh = refresh  # found by its refresh token (else by its access token)
        self.sector: str | None = None  # its holder's, where the look-up read it

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return self.row.expires_in

    def is_expired(self) -> bool:
        ends = self.row.refresh_expires_at if self.refresh else None
        return ends is not None and ends <= datetime.now(UTC)

    def is_revoked(self) -> bool:
        if self.refresh:
            return self.row.rotated_at is not None or self.row.revoked_at is not None
        return self.row.revoked_at is not None

    def access_expired(self) -> bool:
        ends = self.row.issued_at + timedelta(seconds=self.row.expires_in)
        return ends <= datetime.now(UTC)


@dataclass(frozen=True)
class Signer:
    """What the provider needs besides the store: keys, the issuer and the pairwise secret."""

    session: Session
    vault: Vault
    issuer: str
    client_address: str | None
    keys: SigningKeyCache[RSAKey]


def revoke_tokens(session: Session, *where: ColumnElement[bool], at: datetime | None = None) -> int:
    """End every token matching `where`, access and refresh alike, in one statement; returns
    how many were still live. The one way tokens are ended (a code or refresh token reused, a
    family given back, a client disabled, a consent withdrawn, a session ended)."""
    moment = at or datetime.now(UTC)
    live = or_(OidcToken.revoked_at.is_(None), OidcToken.rotated_at.is_(None))
    ended = session.execute(
        update(OidcToken)
        .where(*where, live)
        .values(revoked_at=moment, rotated_at=moment)
        .returning(OidcToken.id)
    )
    return len(ended.all())


def pairwise_sub(vault: Vault, sector: str, person_id: int) -> str:
    """Stable per sector, unlinkable across sectors, never the ID number (OIDC Core §8.1)."""
    return vault.subject(f"{sector}:{person_id}", "oidc_sub").hex()[:40]


def session_id(vault: Vault, web_session_id: int) -> str:
    """The `sid` claim: names a browser session to the systems it signed in to, without its
    row id or cookie (OIDC Front-Channel Logout 1.0 §3, Back-Channel Logout 1.0 §2.1)."""
    return vault.subject(f"session:{web_session_id}", "oidc_sid").hex()[:32]


CLAIMS_RELEASED = "identity.claims_released"


def real_name_claims(
    session: Session,
    vault: Vault,
    *,
    person: Person,
    account_assurance: int,
    scope: str,
    client: OidcClient,
    client_address: str | None,
) -> dict[str, Any]:
    """The real-name claims a token's scope carries, each release written to the person's data
    record (the audit subject that 我的数据 reads)."""
    scopes = set(scope.split()) & set(client.allowed_scopes) & set(REAL_NAME_SCOPES)
    claims: dict[str, Any] = {}
    if "id_number" in scopes:
        claims["id_number"] = id_number_of(vault, person)
    if "phone" in scopes and (phone := phone_of(vault, person)) is not None:
        claims["phone_number"] = phone
    if "realname" in scopes:
        claims["realname_level"] = account_assurance
    if claims:
        record(
            session,
            CLAIMS_RELEASED,
            actor_person_id=person.id,
            subject=person_subject(vault, person),
            client_address=client_address,
            details={
                "client": client.client_id,
                "client_name": client.name,
                "claims": sorted(claims),
            },
        )
    return claims


class UnmetAuthenticationRequirements(OAuth2Error):  # type: ignore[misc]
    """OpenID Connect Unmet Authentication Requirements 1.0: no online sign-in reaches the level."""

    error = "unmet_authentication_requirements"


def authentication_demand(
    params: Mapping[str, str],
    web_session: WebSession | None,
    *,
    redirect_uri: str,
    now: datetime | None = None,
) -> int | None:
    """What an authorization request demands beyond the browser's session: the level to sign in
    (again) at, or None when the session will do.

    `prompt=login` and `max_age` ask for a fresh authentication, `acr_values` for a level (any of
    those listed is acceptable, so the lowest is the demand). With `prompt=none` nothing may be
    asked of the user: the client hears `login_required` or `interaction_required` instead.
    """
    moment = now or datetime.now(UTC)
    wanted = _requested_level(params.get("acr_values"), redirect_uri)
    prompts = (params.get("prompt") or "").split()
    fresh = web_session is not None and "login" not in prompts
    if fresh and web_session is not None and params.get("max_age"):
        try:
            max_age = int(params["max_age"])
        except ValueError:
            raise InvalidRequestError(
                "max_age must be a number of seconds", redirect_uri=redirect_uri
            ) from None
        fresh = web_session.authenticated_at + timedelta(seconds=max_age) > moment
    if fresh and web_session is not None and web_session.assurance >= wanted:
        return None
    if "none" in prompts:
        if web_session is None:
            raise LoginRequiredError(redirect_uri=redirect_uri)
        raise InteractionRequiredError(redirect_uri=redirect_uri)
    return wanted


def _requested_level(acr_values: str | None, redirect_uri: str) -> int:
    if not acr_values:
        return 2
    try:
        levels = [int(value) for value in acr_values.split()]
    except ValueError:
        raise InvalidRequestError(
            "acr_values must be levels 2 to 5", redirect_uri=redirect_uri
        ) from None
    wanted = min(levels)
    if wanted > assurance.HIGHEST_ONLINE:
        raise UnmetAuthenticationRequirements(
            f"level {wanted} needs a certificate or an in-person check", redirect_uri=redirect_uri
        )
    return wanted


class InvalidToken(QiluError):
    """A bearer token that is missing, unknown, revoked or expired (RFC 6750 §3.1)."""

    status_code = 401

    def __init__(self, description: str):
        super().__init__("token.invalid", f"访问令牌无效：{description}", reason=description)
        self.description = description

    def headers(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": (
                f'Bearer error="invalid_token", error_description="{self.description}"'
            )
        }


class InsufficientScope(QiluError):
    status_code = 403

    def __init__(self, scope: str):
        super().__init__("token.scope", f"访问令牌未获授权范围 {scope}", scope=scope)
        self.scope = scope

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{self.scope}"'}


@dataclass(frozen=True)
class Bearer:
    """A live access token, as the endpoints that accept one need it."""

    token_id: int
    person_id: int
    name: str
    client_id: str
    sector: str
    scope: str
    assurance: int  # the acr it was issued at
    authenticated_at: datetime
    enterprise: dict[str, str] | None  # the enterprise acted for: uscc and name
    account_assurance: int = 3  # the account's real-name level (实名等级)


_BEARER = (
    select(
        OidcToken.id,
        Account.person_id,
        Person.name,
        OidcToken.client_id,
        OidcClient.sector,
        OidcToken.scope,
        OidcToken.acr,
        OidcToken.auth_time,
        LegalEntity.uscc,
        LegalEntity.name,
        OidcToken.issued_at,
        OidcToken.expires_in,
        OidcToken.revoked_at,
        OidcClient.disabled_at,
        Account.assurance,
    )
    .join(OidcClient, OidcClient.client_id == OidcToken.client_id)
    .join(Account, Account.id == OidcToken.account_id)
    .join(Person, Person.id == Account.person_id)
    .outerjoin(LegalEntity, LegalEntity.id == OidcToken.acting_for_entity_id)
    .where(OidcToken.access_token_hash == bindparam("digest"))
)


def _live_token(
    session: Session,
    statement: Select[*tuple[Any, ...]],
    authorization: str,
    *,
    scope: str | None,
    now: datetime | None,
    unknown: str,
) -> Any:
    """The one validation of an `Authorization: Bearer …` header (RFC 6750): the token's row,
    read in one statement of the columns its caller needs, if it is known, not revoked, its
    client not disabled, not expired and holding `scope`; `InvalidToken` or
    `InsufficientScope` otherwise."""
    if not authorization.lower().startswith("bearer "):
        raise InvalidToken("missing bearer token")
    digest = secret_digest(authorization[7:].strip())
    # Built once, run on the connection: no ORM work for a read of plain columns.
    row = session.connection().execute(statement, {"digest": digest}).first()
    if row is None or row.revoked_at is not None or row.disabled_at is not None:
        raise InvalidToken(unknown)
    if row.issued_at + timedelta(seconds=row.expires_in) <= (now or datetime.now(UTC)):
        raise InvalidToken("token expired")
    if scope is not None and scope not in row.scope.split():
        raise InsufficientScope(scope)
    return row


def bearer_token(
    session: Session, authorization: str, *, scope: str | None = None, now: datetime | None = None
) -> Bearer:
    """A person's live access token (from signing in through a department system)."""
    row = _live_token(
        session, _BEARER, authorization, scope=scope, now=now, unknown="unknown or revoked token"
    )
    uscc, entity_name = row[8], row[9]
    return Bearer(
        token_id=row.id,
        person_id=row.person_id,
        name=row.name,
        client_id=row.client_id,
        sector=row.sector,
        scope=row.scope,
        assurance=row.acr,
        authenticated_at=row.auth_time,
        enterprise={"uscc": uscc, "name": entity_name} if uscc else None,
        account_assurance=row.assurance,
    )


@dataclass(frozen=True)
class ServiceCaller:
    """A live access token a department's system got with its own credentials."""

    token_id: int
    client_id: str
    client_name: str
    department_id: int
    department_code: str
    department_name: str
    division_code: str
    scope: str
    rate_per_second: int | None

    @property
    def actor(self) -> roles.DepartmentSystem:
        """The caller as the access rule sees it."""
        return roles.DepartmentSystem(self.client_id, self.department_id, self.division_code)

    @classmethod
    def of(cls, client: OidcClient, scope: str = "data.read") -> ServiceCaller:
        """The caller a registered department system is, for reads made in process (by another
        module of the platform, a benchmark) rather than over HTTP with a token."""
        department = client.department
        if department is None:
            raise QiluError("client.not_service", f"{client.name}不是部门数据共享系统")
        return cls(
            0,
            client.client_id,
            client.name,
            department.id,
            department.code,
            department.name,
            department.division_code,
            scope,
            client.rate_per_second,
        )

    @classmethod
    def stored(cls, session: Session, client_id: str) -> ServiceCaller | None:
        """The caller a system is for work done on its behalf later (a webhook's page, an
        extract): None once it is gone or disabled."""
        client = session.scalars(
            select(OidcClient).where(OidcClient.client_id == client_id)
        ).one_or_none()
        if client is None or client.disabled_at is not None:
            return None
        return cls.of(client)


_SERVICE_CALLER = (
    select(
        OidcToken.id,
        OidcToken.client_id,
        OidcClient.name,
        Department.id,
        Department.code,
        Department.name,
        Department.division_code,
        OidcToken.scope,
        OidcClient.rate_per_second,
        OidcToken.issued_at,
        OidcToken.expires_in,
        OidcToken.revoked_at,
        OidcClient.disabled_at,
    )
    .join(OidcClient, OidcClient.client_id == OidcToken.client_id)
    .join(Department, Department.id == OidcClient.department_id)
    .where(OidcToken.access_token_hash == bindparam("digest"), OidcToken.account_id.is_(None))
)


def service_caller(
    session: Session, authorization: str, *, scope: str, now: datetime | None = None
) -> ServiceCaller:
    """The department system behind an `Authorization: Bearer …` header (a token from the
    client-credentials grant); a person's token does not serve here."""
    unknown = "unknown or revoked token (a department system's own token is needed)"
    row = _live_token(
        session, _SERVICE_CALLER, authorization, scope=scope, now=now, unknown=unknown
    )
    return ServiceCaller(
        token_id=row[0],
        client_id=row[1],
        client_name=row[2],
        department_id=row[3],
        department_code=row[4],
        department_name=row[5],
        division_code=row[6],
        scope=row[7],
        rate_per_second=row[8],
    )


def user_claims(
    vault: Vault,
    *,
    sector: str,
    person_id: int,
    name: str,
    scope: str,
    acr: int,
    enterprise: dict[str, str] | None,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": pairwise_sub(vault, sector, person_id),
        "acr": str(acr),
        "identity_type": "person",
    }
    if "profile" in scope.split():
        claims["name"] = name
    if enterprise is not None:
        claims["identity_type"] = "enterprise"
        claims["enterprise"] = enterprise
    return claims


AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


class _CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = AUTH_METHODS

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        signer: Signer = self.server.signer
        session = signer.session
        data = request.payload.data
        web_session = request.user  # the WebSession of the signed-in browser
        now = datetime.now(UTC)
        session.add(
            OidcAuthorizationCode(
                code_hash=secret_digest(code),
                client_id=request.client.get_client_id(),
                account_id=web_session.account_id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope or "",
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                auth_time=web_session.authenticated_at,
                acr=web_session.assurance,
                acting_for_entity_id=web_session.acting_for_entity_id,
                web_session_id=web_session.id,
                expires_at=now + CODE_LIFETIME,
            )
        )
        session.flush()

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        signer: Signer = self.server.signer
        session = signer.session
        row = session.scalars(
            select(OidcAuthorizationCode)
            .where(
                OidcAuthorizationCode.code_hash == secret_digest(code),
                OidcAuthorizationCode.client_id == client.get_client_id(),
            )
            .options(  # what the ID token needs, in the same round trip
                joinedload(OidcAuthorizationCode.account).joinedload(Account.person),
                joinedload(OidcAuthorizationCode.acting_for),
            )
        ).first()
        if row is None:
            return None
        if row.used_at is not None:  # RFC 6749 §4.1.2: revoke what the first use issued
            revoke_tokens(session, OidcToken.code_id == row.id)
            record(
                session,
                "oidc.code_reused",
                subject=f"client:{row.client_id}",
                actor_person_id=row.account.person_id,
                client_address=signer.client_address,
            )
            return None
        if row.expires_at <= datetime.now(UTC):
            return None
        return Code(row)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        authorization_code.row.used_at = datetime.now(UTC)

    def authenticate_user(self, authorization_code: Code) -> Account:
        self.request.code_row = authorization_code.row
        return authorization_code.row.account


class _Pkce(CodeChallenge):  # type: ignore[misc]
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if grant.request.client.is_public and not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required of public clients: send code_challenge")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: Code) -> str | None:
        return authorization_code.row.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: Code) -> str | None:
        return authorization_code.row.code_challenge_method


class _OpenId(OpenIDCode):  # type: ignore[misc]
    def __init__(self, server: QiluAuthorizationServer):
        super().__init__(require_nonce=False)
        self.provider = server
        self._key: tuple[str, Any] | None = None

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False  # codes are single-use and short-lived; replay is stopped there

    def _signing_key(self) -> tuple[str, Any]:
        if self._key is None:  # Authlib asks twice per token (header, key): look it up once
            signer = self.provider.signer
            self._key = signer.keys.current(signer.session, signer.vault)
        return self._key

    def resolve_client_private_key(self, client: Client) -> Any:
        return self._signing_key()[1]

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": self._signing_key()[0]}

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        """RS256 through Authlib; for a client registered for SM2 (国密), the same claims signed
        with the platform's SM2 key, at_hash over SM3."""
        if request.client.row.id_token_alg != SM2:
            encoded: str = super().encode_id_token(token, request)
            return encoded
        claims = self.get_compatible_claims(request)
        if request.authorization_code:
            claims.update(self.get_authorization_code_claims(request.authorization_code))
        if token.get("access_token"):
            claims["at_hash"] = sm3_half_hash(token["access_token"])
        claims.update(self.generate_user_info(request.user, token["scope"]))
        signer = self.provider.signer
        kid, key = sm2_key(signer.session, signer.vault)
        return sign_sm2_jwt(kid, key, dict(claims))

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.provider.signer.issuer,
            "aud": [client.get_client_id()],
            "iat": now,
            "exp": now + int(ID_TOKEN_LIFETIME.total_seconds()),
        }
        code_row = getattr(self.provider.current_request, "code_row", None)
        if code_row is not None and code_row.web_session_id is not None:
            claims["sid"] = session_id(self.provider.signer.vault, code_row.web_session_id)
        return claims

    def generate_user_info(self, user: Account, scope: str) -> dict[str, Any]:
        code_row = getattr(self.provider.current_request, "code_row", None)
        client = self.provider.current_request.client.row
        entity = code_row.acting_for if code_row is not None else None
        signer = self.provider.signer
        claims = user_claims(
            signer.vault,
            sector=client.sector,
            person_id=user.person_id,
            name=user.person.name,
            scope=scope,
            acr=code_row.acr if code_row else 3,
            enterprise={"uscc": entity.uscc, "name": entity.name} if entity else None,
        )
        return claims | real_name_claims(
            signer.session,
            signer.vault,
            person=user.person,
            account_assurance=user.assurance,
            scope=scope,
            client=client,
            client_address=signer.client_address,
        )


class _RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    INCLUDE_NEW_REFRESH_TOKEN = True
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = AUTH_METHODS

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        signer: Signer = self.server.signer
        session = signer.session
        row = session.scalars(
            select(OidcToken)
            .where(OidcToken.refresh_token_hash == secret_digest(refresh_token))
            .options(joinedload(OidcToken.account))
        ).first()
        if row is None:
            return None
        if row.rotated_at is not None or row.revoked_at is not None:
            # A rotated-out refresh token came back: someone holds a copy. End the family.
            revoke_tokens(session, OidcToken.family == row.family)
            record(
                session,
                "oidc.refresh_reused",
                subject=f"client:{row.client_id}",
                actor_person_id=row.account.person_id if row.account else None,
                client_address=signer.client_address,
                details={"family": row.family},
            )
            return None
        token = Token(row)
        return None if token.is_expired() else token

    def authenticate_user(self, refresh_token: Token) -> Account | None:
        self.request.refresh_row = refresh_token.row
        return refresh_token.row.account

    def revoke_old_credential(self, refresh_token: Token) -> None:
        refresh_token.row.rotated_at = datetime.now(UTC)


class _ServiceGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    """A department system's own token (RFC 6749 §4.4): no person, no refresh token."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = AUTH_METHODS[:3]


def _find_token(session: Session, token_string: str, token_type_hint: str | None) -> Token | None:
    """A token by its value, looked for first where the hint says and then everywhere: a wrong
    or unknown hint never hides a token (RFC 7009 §2.1, RFC 7662 §2.1). With it, in the same
    round trip, its holder and the sector its holder's `sub` belongs to."""
    digest = secret_digest(token_string)
    columns = [OidcToken.access_token_hash, OidcToken.refresh_token_hash]
    if token_type_hint == "refresh_token":
        columns.reverse()
    for candidate in columns:
        found = session.execute(
            select(OidcToken, OidcClient.sector)
            .join(OidcClient, OidcClient.client_id == OidcToken.client_id)
            .where(candidate == digest)
            .options(joinedload(OidcToken.account))
        ).first()
        if found is not None:
            token = Token(found[0], refresh=candidate is OidcToken.refresh_token_hash)
            token.sector = found[1]
            return token
    return None


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009: a client gives back a token it holds. A refresh token takes its whole family
    (every access token it led to) with it; an access token only itself."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = AUTH_METHODS

    def check_params(self, request: OAuth2Request, client: Client) -> None:
        if "token" not in request.form:
            raise InvalidRequestError("token is required")
        # token_type_hint is only a hint: an unknown one is ignored (RFC 7009 §2.1).

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return _find_token(self.server.signer.session, token_string, token_type_hint)

    def revoke_token(self, token: Token, request: OAuth2Request) -> None:
        signer: Signer = self.server.signer
        now = datetime.now(UTC)
        row = token.row
        if token.refresh:
            revoke_tokens(signer.session, OidcToken.family == row.family, at=now)
        elif row.revoked_at is None:
            row.revoked_at = now
        record(
            signer.session,
            "oidc.token_revoked",
            actor_person_id=row.account.person_id if row.account else None,
            subject=f"client:{row.client_id}",
            client_address=signer.client_address,
            details={"token": row.id, "kind": "refresh" if token.refresh else "access"},
        )


class _Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662, for the APIs of department systems: is this bearer token live, for whom, with
    what scope. A department's system (a resource server) may ask about any access token; any
    other client only about its own tokens."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = AUTH_METHODS[:3]

    def check_params(self, request: OAuth2Request, client: Client) -> None:
        if "token" not in request.form:
            raise InvalidRequestError("token is required")

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return _find_token(self.server.signer.session, token_string, token_type_hint)

    def check_permission(self, token: Token, client: Client, request: OAuth2Request) -> bool:
        if token.check_client(client):
            return True
        return client.is_service and not token.refresh

    def introspect_token(self, token: Token) -> dict[str, Any]:
        """The answer (§2.2). Not an audit entry per call: it releases no personal data (the
        pairwise `sub` the holder already has, scope and times), and the API's own reads of
        personal data are logged where they happen."""
        signer: Signer = self.server.signer
        row = token.row
        issued = int(row.issued_at.timestamp())
        answer: dict[str, Any] = {
            "active": True,
            "iss": signer.issuer,
            "client_id": row.client_id,
            "token_type": "refresh_token" if token.refresh else "Bearer",
            "scope": row.scope,
            "iat": issued,
            "exp": int(row.refresh_expires_at.timestamp())
            if token.refresh and row.refresh_expires_at
            else issued + row.expires_in,
        }
        if row.account is not None and token.sector is not None:
            answer |= {
                "sub": pairwise_sub(signer.vault, token.sector, row.account.person_id),
                "aud": row.client_id,
                "acr": str(row.acr),
                "auth_time": int(row.auth_time.timestamp()),
            }
            if row.web_session_id is not None:
                answer["sid"] = session_id(signer.vault, row.web_session_id)
        else:
            answer["sub"] = row.client_id  # a system's own token
        return answer

    def create_introspection_payload(self, token: Token | None) -> dict[str, Any]:
        if token is not None and not token.refresh and token.access_expired():
            return {"active": False}
        payload: dict[str, Any] = super().create_introspection_payload(token)
        return payload


class _ClientAssertion(JWTBearerClientAssertion):  # type: ignore[misc]
    """private_key_jwt (RFC 7523 §2.2, OIDC Core §9): the client signs a short JWT with a key
    whose public half it registered; each assertion is accepted once."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: QiluAuthorizationServer):
        super().__init__(validate_jti=True, leeway=30)
        self.server = server

    def get_audiences(self) -> list[str]:
        issuer = self.server.signer.issuer
        return [
            issuer,
            f"{issuer}/oidc/token",
            f"{issuer}/oidc/par",
            f"{issuer}/oidc/introspect",
            f"{issuer}/oidc/revoke",
        ]

    def resolve_client_public_key(self, client: Client) -> KeySet:
        return KeySet.import_key_set(client.row.jwks or {"keys": []})  # type: ignore[arg-type]

    def validate_jti(self, claims: Mapping[str, Any], jti: str) -> bool:
        session = self.server.signer.session
        now = datetime.now(UTC)
        session.execute(delete(OidcAssertion).where(OidcAssertion.expires_at < now))
        try:
            with session.begin_nested():
                session.add(
                    OidcAssertion(
                        client_id=str(claims["sub"]),
                        jti=str(jti)[:255],
                        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
                    )
                )
        except IntegrityError:
            return False
        return True


class QiluAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """One per request: it works on that request's unit of work."""

    def __init__(self, signer: Signer):
        super().__init__(scopes_supported=[*SCOPES, *REAL_NAME_SCOPES, *SERVICE_SCOPES])
        self.signer = signer
        self.current_request: Any = None
        self._clients: dict[str, Client | None] = {}
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=self._access_token,
                refresh_token_generator=lambda **_: generate_token(48),
                expires_generator=lambda client, grant_type: ACCESS_TOKEN_LIFETIME,
            ),
        )
        self.register_client_auth_method("private_key_jwt", _ClientAssertion(self))
        self.register_grant(_CodeGrant, [_Pkce(required=True), _OpenId(self)])
        self.register_grant(_RefreshGrant)
        self.register_grant(_ServiceGrant)
        self.register_endpoint(_Revocation)
        self.register_endpoint(_Introspection)

    def validate_requested_scope(self, scope: str) -> None:
        """Scopes it does not know are ignored, not refused (OIDC Core §3.1.2.1): the client's
        `get_allowed_scope` keeps only what it may have."""

    def _access_token(
        self, client: Client, grant_type: str, user: Account | None, scope: str
    ) -> str:
        """An opaque token, or for a client registered for them a JWT (RFC 9068) its own API
        can check offline: signed by the provider's key, `typ` at+jwt, short-lived. Either way
        its hash is stored, so revocation and introspection work on both."""
        if client.row.access_token_format != "jwt":
            return str(generate_token(42))
        now = int(time.time())
        source = getattr(self.current_request, "code_row", None) or getattr(
            self.current_request, "refresh_row", None
        )
        claims: dict[str, Any] = {
            "iss": self.signer.issuer,
            "aud": client.get_client_id(),
            "client_id": client.get_client_id(),
            "iat": now,
            "exp": now + ACCESS_TOKEN_LIFETIME,
            "jti": generate_token(24),
            "scope": scope or "",
            "sub": client.get_client_id()
            if user is None
            else pairwise_sub(self.signer.vault, client.row.sector, user.person_id),
        }
        if source is not None:
            claims |= {"acr": str(source.acr), "auth_time": int(source.auth_time.timestamp())}
        kid, key = self.signer.keys.current(self.signer.session, self.signer.vault)
        return str(jwt.encode({"alg": "RS256", "kid": kid, "typ": "at+jwt"}, claims, key))

    def query_client(self, client_id: str) -> Client | None:
        if client_id in self._clients:  # Authlib asks more than once per request
            return self._clients[client_id]
        row = self.signer.session.scalars(
            select(OidcClient).where(
                OidcClient.client_id == client_id, OidcClient.disabled_at.is_(None)
            )
        ).first()
        self._clients[client_id] = Client(row) if row else None
        return self._clients[client_id]

    def save_token(self, token: Mapping[str, Any], request: OAuth2Request) -> None:
        session = self.signer.session
        code_row = getattr(request, "code_row", None)
        previous = getattr(request, "refresh_row", None)
        now = datetime.now(UTC)
        source = code_row or previous
        user: Account | None = request.user  # None: a system's own token
        row = OidcToken(
            client_id=request.client.get_client_id(),
            account_id=user.id if user else None,
            access_token_hash=secret_digest(token["access_token"]),
            refresh_token_hash=secret_digest(token["refresh_token"])
            if token.get("refresh_token")
            else None,
            scope=token.get("scope", ""),
            family=previous.family if previous else secrets.token_hex(16),
            code_id=code_row.id if code_row else (previous.code_id if previous else None),
            acr=source.acr if source else 3,
            acting_for_entity_id=source.acting_for_entity_id if source else None,
            web_session_id=None
            if source is None or "offline_access" in token.get("scope", "")
            else source.web_session_id,
            auth_time=source.auth_time if source else now,
            issued_at=now,
            expires_in=int(token["expires_in"]),
            refresh_expires_at=now + REFRESH_TOKEN_LIFETIME if token.get("refresh_token") else None,
        )
        session.add(row)
        session.flush()
        action = "oidc.token_refreshed" if previous else "oidc.token_issued"
        record(
            session,
            action,
            actor_person_id=user.person_id if user else None,
            subject=f"client:{row.client_id}",
            client_address=self.signer.client_address,
            details={"token": row.id, "scope": row.scope},
        )

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        self.current_request = request
        return request

    def create_json_request(self, request: Any) -> JsonRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


class CapturedRequest(OAuth2Request):  # type: ignore[misc]
    """An HTTP request read in full (query and form) before Authlib's synchronous code runs."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        form: Mapping[str, str],
    ):
        # Keep the case-insensitive mapping: Authlib asks for "Authorization".
        super().__init__(method=method, uri=uri, headers=headers)
        self._args, self._form = dict(query), dict(form)
        self.payload = BasicOAuth2Payload({**self._args, **self._form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form
