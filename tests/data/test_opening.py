"""公共数据开放: the resources marked 无条件开放 on a public page, only their public fields, the
download streamed as CSV without signing in, each download counted."""

from __future__ import annotations

import csv
import io

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from qilu.data.catalog import install_standard_catalog
from qilu.data.loading import load_rows
from qilu.identity.roles import OPERATOR
from qilu.pii import Vault

USCC = "91370102MA3C0000X5"
REPRESENTATIVE_ID = "370102199003073516"


def setup(session: Session, vault: Vault) -> None:
    install_standard_catalog(session)
    rows = [
        (1, {"uscc": USCC, "name": "济南示例科技有限公司", "industry": "I", "division": "370102",
             "legal_representative": "李强", "legal_representative_id_number": REPRESENTATIVE_ID,
             "status": "存续"}),
    ]  # fmt: skip
    load_rows(session, vault, "JC-FR-001", rows, source="t", actor=OPERATOR)
    session.flush()


def test_the_open_catalog_lists_open_resources_and_only_their_public_fields(
    app: FastAPI, client: TestClient, session: Session, vault: Vault,
    departments: None,
) -> None:  # fmt: skip
    setup(session, vault)
    listing = client.get("/open-data")
    assert listing.status_code == 200
    assert 'data-open="JC-FR-001"' in listing.text and 'data-open="JC-KJ-001"' in listing.text
    assert 'data-open="JC-RK-001"' not in listing.text  # 人口: not open
    detail = client.get("/open-data/JC-FR-001")
    assert detail.status_code == 200 and "法定代表人姓名" in detail.text
    assert "legal_representative_id_number" not in detail.text and "CC BY 4.0" in detail.text
    closed = client.get("/open-data/JC-RK-001")
    assert closed.status_code == 404


def test_a_download_is_csv_of_the_public_fields_and_is_counted(
    app: FastAPI, client: TestClient, session: Session, vault: Vault,
    departments: None,
) -> None:  # fmt: skip
    setup(session, vault)
    first = client.get("/open-data/JC-FR-001.csv")
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(first.content.decode("utf-8-sig"))))
    assert table[0][:3] == ["uscc", "name", "industry"]
    assert "legal_representative_id_number" not in table[0]
    assert table[1][:2] == [USCC, "济南示例科技有限公司"]
    assert REPRESENTATIVE_ID not in first.text
    client.get("/open-data/JC-FR-001.csv")
    assert "data-downloads>2<" in client.get("/open-data/JC-FR-001").text
    assert client.get("/open-data/JC-RK-001.csv").status_code == 404
