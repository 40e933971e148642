"""Quality per resource: completeness, validity, duplicates, freshness against the update cycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from qilu.data.catalog import install_standard_catalog
from qilu.data.quality import overdue, quality_of
from qilu.pii import Vault

from .test_loading import HEADER, LI, WANG, ZHAO, load


@pytest.fixture
def catalog(session: Session, departments: None) -> None:
    install_standard_catalog(session)


def test_an_unloaded_resource_is_overdue_and_empty(
    session: Session, vault: Vault, catalog: None
) -> None:
    quality = quality_of(session, vault, "JC-RK-001")
    assert quality.records == 0 and quality.validity is None
    assert quality.is_overdue(datetime.now(UTC))
    assert "JC-RK-001" in overdue(session)


def test_quality_after_loads(session: Session, vault: Vault, catalog: None) -> None:
    text = HEADER + "".join(
        [
            f"{WANG},王芳,2,1949-12-31,110105,13800138000\n",
            f"{LI},李强,1,1990-03-07,370102,\n",
            f"{WANG},王芳,2,1949-12-31,110105,\n",  # repeated key
            "370102199003073510,李四,1,1990-03-07,370102,\n",  # bad check digit
        ]
    )
    load(session, vault, text)
    load(session, vault, HEADER + f"{ZHAO},赵六,1,1980-01-01,370102,\n")
    quality = quality_of(session, vault, "JC-RK-001")
    assert quality.records == 3 and quality.sampled == 3
    assert quality.rows_loaded == 5 and quality.rows_rejected == 2
    assert quality.validity == pytest.approx(0.6) and quality.duplicate_rows == 1
    assert quality.completeness["name"] == 1.0
    assert quality.completeness["phone"] == pytest.approx(1 / 3)
    assert quality.completeness["address"] == 0.0
    now = datetime.now(UTC)
    assert not quality.is_overdue(now)
    assert quality.is_overdue(now + timedelta(days=3))  # a daily resource, three days on
    assert "JC-RK-001" not in overdue(session) and "JC-FR-001" in overdue(session)
    assert "JC-RK-001" in overdue(session, now + timedelta(days=3))
