"""Trust grades of licences (国办函〔2016〕108号), by rule: A for an e-licence an agency issued
with its seal (every `Licence` Qilu issues); for a licence an application brings instead, B
when a window clerk took it in (an application made at a window is made with the originals in
hand), C when the holder uploaded it online (its original still to be checked), D when the
holder promised it in writing (告知承诺). A and B are usable again: a later application is
spared the material."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.services.licences import Wallet
from qilu.services.models import Application, ApplicationMaterial, LicenceCopy
from qilu.services.specs import Catalog

GRADE_NAMES = {
    "A": "A级（签发机关加盖电子印章，可直接使用）",
    "B": "B级（窗口核验原件，可重复使用）",
    "C": "C级（本人上传，须核验原件）",
    "D": "D级（本人书面承诺）",
}


def record_copies(
    session: Session,
    application: Application,
    rows: list[ApplicationMaterial],
    holder_index: bytes,
    catalog: Catalog,
) -> list[LicenceCopy]:
    """The copies of the licences the application brought: uploaded (B at a window, C
    online) or promised (D)."""
    made = []
    now = datetime.now(UTC)
    seen: set[str] = set()
    for row in rows:
        source = catalog.material(row.material).source
        if not source.startswith("licence:") or row.source not in ("upload", "promise"):
            continue
        licence_type = source.removeprefix("licence:")
        if licence_type in seen:  # several files of one licence: the first stands for it
            continue
        seen.add(licence_type)
        clerk = application.clerk_person_id if application.channel == "window" else None
        grade = "D" if row.source == "promise" else "B" if clerk else "C"
        copy = LicenceCopy(
            holder_code_index=holder_index,
            licence_type=licence_type,
            grade=grade,
            application_id=application.id,
            digest=row.digest,
            file_name=row.file_name,
            content_type=row.content_type,
            verified_by_person_id=clerk if grade == "B" else None,
            verified_at=now if grade == "B" else None,
            created_at=now,
        )
        session.add(copy)
        made.append(copy)
    return made


def reusable(session: Session, wallet: Wallet, licence_type: str) -> LicenceCopy | None:
    """The newest B copy of a licence the holder brought before, if any."""
    return session.scalars(
        select(LicenceCopy)
        .where(
            LicenceCopy.holder_code_index.in_(wallet),
            LicenceCopy.licence_type == licence_type,
            LicenceCopy.grade == "B",
        )
        .order_by(LicenceCopy.id.desc())
        .limit(1)
    ).first()


def copies_of(session: Session, wallet: Wallet) -> list[LicenceCopy]:
    return list(
        session.scalars(
            select(LicenceCopy)
            .where(LicenceCopy.holder_code_index.in_(wallet))
            .order_by(LicenceCopy.id.desc())
        )
    )
