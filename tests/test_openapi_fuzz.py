"""The whole OpenAPI document, fuzzed (schemathesis): every operation, without a token, with a
department system's token and with a person's wrong one, must answer without a server error and
only with the statuses it documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance
from sqlalchemy.orm import Session

from qilu.data import sharing
from qilu.data.catalog import install_standard_catalog
from qilu.identity.roles import OPERATOR

from .factories import make_service_client


@pytest.fixture
def api(app: FastAPI, session: Session, departments: None) -> Any:
    install_standard_catalog(session)
    return schemathesis.openapi.from_asgi("/api/openapi.json", app)


@pytest.fixture
def tokens(app: FastAPI, session: Session, api: Any) -> dict[str, str]:
    """No token, a department system's own (with a grant), and a made-up one."""
    from fastapi.testclient import TestClient

    system = make_service_client(session, "370102-approval")
    sharing.request_access(
        session, "JC-FR-001", consumer="370102-approval", fields=["uscc", "name"],
        purpose="核验企业身份", legal_basis="《山东省政务信息资源共享管理办法》", may_list=True,
        valid_until=datetime.now(UTC) + timedelta(days=30), actor=OPERATOR,
    )  # fmt: skip
    with TestClient(app) as client:
        token = client.post(
            "/oidc/token",
            data={"grant_type": "client_credentials", "scope": "data.read data.push"},
            auth=(system.client.client_id, system.secret or ""),
        ).json()["access_token"]
    return {"none": "", "system": f"Bearer {token}", "forged": "Bearer forged-token"}


def test_no_operation_fails_or_answers_undocumented(api: Any, tokens: dict[str, str]) -> None:
    checks = [not_a_server_error, status_code_conformance]
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: Any) -> None:
            for token in tokens.values():  # without a token, as a system, forged
                headers = {"Authorization": token} if token else {}
                case.call_and_validate(headers=headers, checks=checks)

        fuzz()
