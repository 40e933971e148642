"""The catalog for other systems: search and GB/T 21063 metadata over the API, the catalog as
DCAT-AP read back as RDF by rdflib, and a city's catalog cascaded under the province's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.data import cascade, sharing
from qilu.data.catalog import get_resource, install_standard_catalog
from qilu.data.models import DataResource
from qilu.errors import QiluError, Refused
from qilu.identity.roles import OPERATOR

from ..factories import service_token

EU = Namespace("http://publications.europa.eu/resource/authority/")


@pytest.fixture
def token(client: TestClient, session: Session, departments: None) -> dict[str, str]:
    install_standard_catalog(session)
    return service_token(client, session, "370102-approval")


def test_a_system_finds_resources_and_reads_their_metadata_but_no_data(
    client: TestClient, token: dict[str, str]
) -> None:
    found = client.get("/api/v1/catalog?q=参保", headers=token)
    assert found.status_code == 200
    assert [r["code"] for r in found.json()["resources"]] == ["ZT-SB-001"]
    described = client.get("/api/v1/catalog/JC-RK-001", headers=token).json()
    assert described["classification"] == "1" and described["library"]["name"] == "基础库"
    assert described["format"] == {"code": "database", "name": "数据库"}
    assert described["sharing"]["mode"]["name"] == "库表"
    assert described["update_cycle"]["name"] and described["published_at"]
    id_number = next(f for f in described["fields"] if f["name"] == "id_number")
    assert id_number["key"] and id_number["sensitivity_name"] == "个人信息"
    assert set(id_number) >= {"label", "type", "type_name", "required"}
    missing = client.get("/api/v1/catalog/NO-SUCH-1", headers=token)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "catalog.not_found"
    assert client.get("/api/v1/catalog").status_code == 401


def test_the_catalog_as_dcat_ap_reads_back_as_rdf(
    client: TestClient, session: Session, token: dict[str, str]
) -> None:
    answer = client.get("/api/v1/catalog/dcat", headers=token)
    assert answer.headers["content-type"].startswith("application/ld+json")
    graph = Graph().parse(data=answer.text, format="json-ld")
    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert len(datasets) == session.query(DataResource).count()
    people = next(d for d in datasets if str(d).endswith("/JC-RK-001"))
    assert graph.value(people, DCTERMS.identifier).toPython() == "JC-RK-001"
    assert graph.value(people, DCTERMS.accrualPeriodicity) == EU["frequency/DAILY"]
    assert graph.value(people, DCTERMS.accessRights) == EU["access-right/RESTRICTED"]

    public = client.get("/open-data/dcat.jsonld")  # no sign-in: only what is open
    opened = Graph().parse(data=public.text, format="json-ld")
    assert (None, RDF.type, DCAT.Catalog) in opened
    assert next(opened.subjects(RDF.type, DCAT.Catalog)).endswith("/open-data/dcat.jsonld")
    codes = {
        str(opened.value(d, DCTERMS.identifier)) for d in opened.subjects(RDF.type, DCAT.Dataset)
    }
    assert codes == {"JC-FR-001", "JC-KJ-001"}
    downloads = {str(url) for url in opened.objects(None, DCAT.downloadURL)}
    assert any(url.endswith("/open-data/JC-FR-001.csv") for url in downloads)
    assert (None, DCTERMS.license, URIRef("https://creativecommons.org/licenses/by/4.0/")) in opened


def city_resource(code: str = "YW-JN-001", **changes: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": "济南市泉水保护名录",
        "provider": "370100-bigdata",
        "library": "business",
        "topic": "生态环境",
        "sharing": "unconditional",
        "update_cycle": "yearly",
        "legal_basis": "《济南市名泉保护条例》",
        "classification": "3.12",
        "related": ["JC-KJ-001"],
        "fields": [
            {"name": "spring", "label": "泉名", "type": "string", "required": True, "key": True},
        ],
        **changes,
    }


def test_a_city_catalog_cascades_under_the_provinces_and_again_updates_it(
    session: Session, departments: None
) -> None:
    install_standard_catalog(session)
    exported = json.loads(json.dumps(cascade.export(session)))  # as the file carries it
    assert {e["code"] for e in exported} >= {"JC-RK-001", "ZT-SB-001"}
    assert next(e for e in exported if e["code"] == "ZT-SB-001")["sharing_rules"]["purposes"]

    done = cascade.cascade(session, [city_resource()], origin="济南市")
    assert done.added == ["YW-JN-001"] and done.updated == []
    entry = get_resource(session, "YW-JN-001")
    assert (entry.origin, entry.classification, entry.related) == ("济南市", "3.12", ["JC-KJ-001"])
    assert "YW-JN-001" not in {e["code"] for e in cascade.export(session)}  # not passed upward
    with pytest.raises(Refused) as elsewhere:  # its data and grants are the city's
        sharing.request_access(
            session, "YW-JN-001", consumer="370102-approval", fields=["spring"],
            purpose="名泉保护执法核查", legal_basis="《济南市名泉保护条例》",
            valid_until=datetime.now(UTC) + timedelta(days=30), actor=OPERATOR,
        )  # fmt: skip
    assert elsewhere.value.code == "sharing.cascaded" and "济南市" in elsewhere.value.message

    wider = city_resource(
        name="济南市名泉保护名录",
        fields=[
            *city_resource()["fields"],
            {"name": "district", "label": "所在区县", "type": "division"},
        ],
    )
    again = cascade.cascade(session, [wider], origin="济南市")
    assert again.updated == ["YW-JN-001"] and entry.name == "济南市名泉保护名录"
    assert entry.version == 2
    logged = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "data.catalog_cascaded")
    ).all()
    assert [e.details["added"] for e in logged] == [["YW-JN-001"], []]


@pytest.mark.parametrize(
    ("entries", "origin", "code"),
    [
        ([city_resource(code="JC-RK-001")], "济南市", "cascade.conflict"),
        ([city_resource(provider="370000-bigdata")], "济南市", "cascade.city"),
        (
            [city_resource(), city_resource("YW-QD-001", provider="370200-bigdata")],
            "济南市",
            "cascade.city",
        ),
        ([city_resource(provider="nowhere")], "济南市", "cascade.provider"),
        ([city_resource(classification="1.2")], "济南市", "catalog.invalid"),
        ([city_resource()], " ", "cascade.origin"),
    ],
)
def test_a_cascade_refuses_what_is_not_one_citys_own_and_writes_nothing(
    session: Session, departments: None, entries: list[Any], origin: str, code: str
) -> None:
    install_standard_catalog(session)
    before = session.query(DataResource).count()
    with pytest.raises(QiluError) as refused:
        cascade.cascade(session, entries, origin=origin)
    assert refused.value.code == code
    assert session.query(DataResource).count() == before
