from __future__ import annotations

from fastapi.testclient import TestClient


def test_code_check_api(client: TestClient) -> None:
    response = client.get(
        "/api/v1/codes/check", params={"value": ["11010519491231002X", "370102199003073510"]}
    )
    assert response.status_code == 200
    first, second = response.json()
    assert first["valid"] and first["parsed"]["birth_date"] == "1949-12-31"
    assert not second["valid"]
    assert second["error"]["code"] == "id_number.check_digit"
    assert second["error"]["details"] == {"position": 18, "expected": "6", "found": "0"}


def test_code_check_api_rejects_a_missing_value_naming_the_field(client: TestClient) -> None:
    response = client.get("/api/v1/codes/check")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "request.invalid"
    assert error["field"] == "value"


def test_divisions_api(client: TestClient) -> None:
    counties = client.get("/api/v1/divisions", params={"level": "county", "within": "370100"})
    assert [d["name"] for d in counties.json()][:2] == ["历下区", "市中区"]
    assert len(counties.json()) == 12
    with_old = client.get(
        "/api/v1/divisions", params={"within": "370000", "include_abolished": "true"}
    ).json()
    assert any(d["code"] == "371200" and d["abolished_in"] == 2019 for d in with_old)
    bad = client.get("/api/v1/divisions", params={"within": "37"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "within"


def test_code_check_page(client: TestClient) -> None:
    response = client.get("/codes", params={"values": "11010519491231002X\nbad"})
    assert response.status_code == 200
    assert "核验结果（1 / 2 有效）" in response.text
