"""Evidence of shared calls (共享调用存证): every answer the exchange gives a department system
carries a call id, the platform's time, the SM3 digests of the request and of the answer's exact
bytes, and an SM2 signature over them; the same is kept here. Either side can later show what
was asked and answered (`qilu audit evidence CALL-ID`, `GET /api/v1/data/evidence/{call_id}`):
the consumer with the answer it kept, the provider with the platform's record.

What is signed is the text `statement` builds: lines of the version tag, call id, time (UTC,
ISO 8601), client, department, resource, endpoint (method, path and query), status and the two
digests in hexadecimal — what the `Qilu-*` headers carry, so a consumer checks a signature with
nothing but the headers, the answer's bytes and the key published at `/oidc/jwks/sm2`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from qilu import seals
from qilu.data.models import CallEvidence, DataResource
from qilu.digests import sm3
from qilu.errors import NotFound
from qilu.identity.models import Department
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.signing_keys import sm2_key, sm2_public_key
from qilu.pii import Vault
from qilu.seals import SealKey

VERSION = "QILU-EVIDENCE-1"
_TABLE: Table = CallEvidence.__table__  # type: ignore[assignment]
_COLUMNS = [c.name for c in _TABLE.columns if c.name != "id"]
_INSERT = insert(_TABLE)


def request_digest(method: str, target: str, body: bytes) -> bytes:
    """SM3 of what was asked: the method, the path with its query, and the body."""
    return sm3(f"{method} {target}\n".encode(), body)


def statement(evidence: CallEvidence) -> bytes:
    """The signed text."""
    return "\n".join(
        [
            VERSION,
            evidence.call_id,
            evidence.signed_at.astimezone(UTC).isoformat(),
            evidence.client_id,
            evidence.department_code,
            evidence.resource,
            evidence.endpoint,
            str(evidence.status),
            evidence.request_digest.hex(),
            evidence.answer_digest.hex(),
        ]
    ).encode()


@dataclass(frozen=True)
class Digested:
    """An answer known by its SM3 and size (a file, whose digest was taken as it was written)."""

    sm3: bytes
    size: int


def seal(
    session: Session,
    vault: Vault,
    caller: ServiceCaller,
    *,
    resource: str,
    endpoint: str,
    asked: bytes,
    answer: bytes | Digested,
    status: int = 200,
    call_id: str | None = None,
    duration_ms: float | None = None,
    signer: tuple[str, SealKey] | None = None,
    now: datetime | None = None,
) -> CallEvidence:
    """Keep and sign the evidence of one call (in the call's transaction: no answer without
    its evidence). `asked` is the request digest (`request_digest`); `answer` the answer, or
    for a file served from disk its SM3 and size (`Digested`)."""
    kid, key = signer or sm2_key(session, vault)
    digested = answer if isinstance(answer, Digested) else Digested(sm3(answer), len(answer))
    evidence = CallEvidence(
        call_id=call_id or secrets.token_hex(16),
        client_id=caller.client_id,
        department_code=caller.department_code,
        resource=resource,
        endpoint=endpoint[:600],
        status=status,
        request_digest=asked,
        answer_digest=digested.sm3,
        answer_bytes=digested.size,
        duration_ms=duration_ms,
        signed_at=now or datetime.now(UTC),
        kid=kid,
    )
    evidence.signature = key.sign(statement(evidence))
    session.connection().execute(  # at once, without the unit of work: one round trip
        _INSERT, {c: getattr(evidence, c) for c in _COLUMNS}
    )
    return evidence


def headers(evidence: CallEvidence) -> dict[str, str]:
    return {
        "Qilu-Call-Id": evidence.call_id,
        "Qilu-Signed-At": evidence.signed_at.astimezone(UTC).isoformat(),
        "Qilu-Request-Digest": evidence.request_digest.hex(),
        "Qilu-Answer-Digest": evidence.answer_digest.hex(),
        "Qilu-Key-Id": evidence.kid,
        "Qilu-Signature": evidence.signature.hex(),
    }


def answered(
    session: Session,
    request: Request,
    caller: ServiceCaller,
    resource: str,
    body: bytes,
    content: bytes,
    *,
    status: int = 200,
    media_type: str = "application/json",
) -> Response:
    """The answer to a shared call, with its evidence kept and in its headers."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    vault = request.app.state.vault
    evidence = seal(
        session,
        vault,
        caller,
        resource=resource,
        endpoint=f"{request.method} {target}",
        asked=request_digest(request.method, target, body),
        answer=content,
        status=status,
        signer=request.app.state.sm2_keys.current(session, vault),
    )
    return Response(content, status, headers=headers(evidence), media_type=media_type)


def file_headers(
    session: Session,
    request: Request,
    caller: ServiceCaller,
    resource: str,
    answer: Digested,
) -> dict[str, str]:
    """The evidence of a file download (whole, or a range of it: the digest is the whole
    file's, which the consumer checks once it has every byte), kept and as headers."""
    target = request.url.path
    ranged = request.headers.get("range")
    vault = request.app.state.vault
    evidence = seal(
        session,
        vault,
        caller,
        resource=resource,
        endpoint=f"{request.method} {target}" + (f" Range: {ranged}" if ranged else ""),
        asked=request_digest(request.method, target, b""),
        answer=answer,
        status=206 if ranged else 200,
        signer=request.app.state.sm2_keys.current(session, vault),
    )
    return headers(evidence)


@dataclass(frozen=True)
class Checked:
    evidence: CallEvidence
    signature_holds: bool
    answer_matches: bool | None  # None: no answer was given to compare

    @property
    def holds(self) -> bool:
        return self.signature_holds and self.answer_matches is not False


def find(session: Session, call_id: str) -> CallEvidence:
    found = session.scalars(
        select(CallEvidence).where(CallEvidence.call_id == call_id)
    ).one_or_none()
    if found is None:
        raise NotFound("evidence.not_found", f"没有调用编号为 {call_id} 的存证", field="call_id")
    return found


def check(session: Session, call_id: str, answer: bytes | None = None) -> Checked:
    """Whether the kept evidence is the platform's signature, and (given the answer a party
    kept) whether that answer is the one signed."""
    evidence = find(session, call_id)
    public = sm2_public_key(session, evidence.kid)
    holds = public is not None and seals.verify(
        seals.SM2, public, evidence.signature, statement(evidence)
    )
    matches = None if answer is None else sm3(answer) == evidence.answer_digest
    return Checked(evidence, holds, matches)


def visible_to(session: Session, caller: ServiceCaller, call_id: str) -> CallEvidence:
    """A call's evidence for its consumer's systems, or for the providing department's (to
    anyone else, as good as absent)."""
    evidence = find(session, call_id)
    parties = {evidence.department_code, _provider_of(session, evidence.resource)}
    if caller.department_code not in parties:
        raise NotFound("evidence.not_found", f"没有调用编号为 {call_id} 的存证", field="call_id")
    return evidence


def _provider_of(session: Session, code: str) -> str | None:
    return session.scalars(
        select(Department.code)
        .join(DataResource, DataResource.provider_id == Department.id)
        .where(DataResource.code == code)
    ).one_or_none()
