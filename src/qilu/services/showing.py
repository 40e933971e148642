"""亮证: the holder shows a licence as a QR code that lives one minute and tells the verifier only
what the holder chose (the type, number, issuer and validity always; the holder's name and each
content field only if ticked); the verifier sees the time it was checked. And 照面: the licence's
face as an image, to look at or print.

The QR carries a random token; the store keeps its SM3 digest, the fields chosen and when it
expires. Verifying is audited; making a code is not (the page makes one a minute)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import segno
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.digests import secret_digest
from qilu.errors import NotFound, QiluError
from qilu.services.licences import STATUS_NAMES, Wallet, holder_or_keeper, record_use
from qilu.services.models import Licence, LicenceShowing
from qilu.services.specs import shipped_catalog

LIFETIME = timedelta(minutes=1)
SHOWN_PATH = "/licences/shown"
HOLDER = "holder_name"


def owned_licence(session: Session, number: str, wallet: Wallet) -> Licence:
    """The licence, if the wallet holds it or keeps it for someone; 404 otherwise."""
    found = session.scalar(
        select(Licence).where(Licence.number == number, holder_or_keeper(wallet))
    )
    if found is None:
        raise NotFound("licence.not_found", "没有该电子证照", field="number")
    return found


def labelled_content(licence: Licence) -> list[tuple[str, str, str]]:
    """The licence's content as (key, label, value), labels from the catalog's field names."""
    fields = shipped_catalog().fields
    return [
        (key, fields[key].label if key in fields else key, str(value))
        for key, value in licence.content.items()
    ]


def choosable(licence: Licence) -> list[tuple[str, str]]:
    """What the holder may choose to show, as (key, label)."""
    return [(HOLDER, "持证人姓名"), *((k, label) for k, label, _ in labelled_content(licence))]


def status_of(licence: Licence, today: date) -> str:
    if licence.current_state in ("revoked", "suspended"):
        return licence.current_state
    if licence.valid_until is not None and licence.valid_until < today:
        return "expired"
    return "valid"


def show(
    session: Session, licence: Licence, fields: list[str], now: datetime | None = None
) -> tuple[str, LicenceShowing]:
    """A new one-minute code for `licence` showing `fields` (unknown names refused)."""
    now = now or datetime.now(UTC)
    allowed = {key for key, _ in choosable(licence)}
    unknown = [f for f in fields if f not in allowed]
    if unknown:
        raise QiluError("licence.field", "只能选择证照上的信息", field="f", unknown=unknown)
    if status_of(licence, now.date()) != "valid":
        raise QiluError("licence.not_valid", "证照已注销、暂扣或过期，不能亮证", field="number")
    token = secrets.token_urlsafe(16)
    showing = LicenceShowing(
        licence_id=licence.id,
        token_digest=secret_digest(token).hex(),
        fields=list(dict.fromkeys(fields)),
        created_at=now,
        expires_at=now + LIFETIME,
    )
    session.add(showing)
    session.flush()
    return token, showing


@dataclass(frozen=True)
class Shown:
    status: str  # valid | expired | suspended | revoked | unknown | stale (its minute is over)
    reason: str
    checked_at: datetime
    licence_type: str = ""
    number: str = ""
    issuer: str = ""
    validity: str = ""
    fields: tuple[tuple[str, str], ...] = ()  # (label, value) the holder chose to show


SHOWN_NAMES = {**STATUS_NAMES, "stale": "二维码已过期", "unknown": "无效二维码"}


def verify(session: Session, token: str, now: datetime | None = None) -> Shown:
    """What the verifier who scanned `token` may see, and whether the licence holds now."""
    now = now or datetime.now(UTC)
    showing = session.scalar(
        select(LicenceShowing).where(LicenceShowing.token_digest == secret_digest(token).hex())
    )
    if showing is None:
        return Shown("unknown", "不是齐鲁签发的亮证二维码", now)
    if now > showing.expires_at:
        return Shown("stale", "二维码一分钟内有效，请持证人刷新后再扫", now)
    licence = showing.licence
    status = status_of(licence, now.date())
    chosen = set(showing.fields)
    values = [("持证人姓名", licence.holder_name)] if HOLDER in chosen else []
    values += [(label, value) for key, label, value in labelled_content(licence) if key in chosen]
    showing.verified_at = now
    shown = "、".join(label for label, _ in values)
    record_use(
        session,
        licence,
        user="现场核验（扫描亮证二维码）",
        purpose=f"核验证照{('，查看' + shown) if shown else ''}",
        authorisation="持证人当面亮证，自选出示的信息",
    )
    record(
        session,
        "services.licence_shown",
        subject=f"licence:{licence.number}",
        details={"fields": sorted(chosen), "status": status},
    )
    reasons = {
        "valid": "证照由签发机关签发，当前有效",
        "expired": f"有效期至 {licence.valid_until}，已过期",
        "suspended": "已被签发机构暂扣，暂停使用",
        "revoked": f"已注销：{licence.revoke_reason}",
    }
    return Shown(
        status,
        reasons[status],
        now,
        licence.licence_type,
        licence.number,
        licence.issuer.name,
        f"{licence.valid_from} 至 {licence.valid_until or '长期'}",
        tuple(values),
    )


def qr_for(url: str, scale: int = 4) -> str:
    return segno.make(url, error="m").svg_inline(scale=scale)
