"""The catalog for other systems: a resource's metadata with the core elements of GB/T 21063.3
(政务信息资源目录体系 核心元数据: 分类, 名称, 代码, 提供方, 摘要, 格式, 信息项, 共享属性, 开放
属性, 更新周期, 发布日期, 关联资源代码), and the catalog as DCAT-AP (JSON-LD), the vocabulary
European and open-data portals harvest, with the EU's authority tables for frequency, access
rights and file types.

Metadata never holds data: field names, labels, types and sensitivity only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from qilu.data.catalog import (
    FORMATS,
    LIBRARIES,
    OPENING,
    SENSITIVITY_NAMES,
    SHARE_MODES,
    SHARING,
    TYPE_NAMES,
    UPDATE_CYCLES,
    schema_of,
)
from qilu.data.models import DataResource

EU = "http://publications.europa.eu/resource/authority"
FREQUENCY = {
    "realtime": "CONT",
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "yearly": "ANNUAL",
}
# Open data is public; shared data is for government departments (restricted); 不予共享 is not.
ACCESS = {"open": "PUBLIC", "unconditional": "RESTRICTED", "conditional": "RESTRICTED"}
CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


def describe(session: Session, resource: DataResource, *, fields: bool = True) -> dict[str, Any]:
    """A resource's metadata, named as GB/T 21063.3 names its elements (the Chinese name of
    each coded value beside the code)."""
    described: dict[str, Any] = {
        "code": resource.code,
        "name": resource.name,
        "description": resource.description,
        "classification": resource.classification,
        "library": {"code": resource.library, "name": LIBRARIES[resource.library]},
        "topic": resource.topic,
        "provider": {"code": resource.provider.code, "name": resource.provider.name},
        "format": {"code": resource.format, "name": FORMATS.get(resource.format, "")},
        "sharing": {
            "type": resource.sharing,
            "name": SHARING[resource.sharing],
            "conditions": resource.sharing_conditions,
            "rules": resource.sharing_rules or {},
            "mode": {"code": resource.share_mode, "name": SHARE_MODES[resource.share_mode]},
        },
        "opening": {"type": resource.opening, "name": OPENING[resource.opening]},
        "update_cycle": {
            "code": resource.update_cycle,
            "name": UPDATE_CYCLES[resource.update_cycle],
        },
        "legal_basis": resource.legal_basis,
        "published_at": resource.created_at.isoformat(),
        "updated_at": resource.updated_at.isoformat(),
        "related": list(resource.related or []),
        "origin": resource.origin or None,
        "version": resource.version,
    }
    if fields:
        described["fields"] = [
            {
                "name": f.name,
                "label": f.label,
                "type": f.type,
                "type_name": TYPE_NAMES[f.type],
                "required": f.required,
                "key": f.key,
                "sensitivity": f.sensitivity,
                "sensitivity_name": SENSITIVITY_NAMES[f.sensitivity],
                **({"values": f.values} if f.values else {}),
            }
            for f in schema_of(session, resource)
        ]
    return described


def dcat_catalog(
    resources: list[DataResource], *, base_url: str, path: str, title: str, publisher: str
) -> dict[str, Any]:
    """The resources as a DCAT-AP catalog (JSON-LD), itself at `path`."""
    return {
        "@context": CONTEXT,
        "@id": f"{base_url}{path}",
        "@type": "dcat:Catalog",
        "dct:title": {"@value": title, "@language": "zh"},
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": publisher},
        "dcat:dataset": [_dataset(resource, base_url) for resource in resources],
    }


def _dataset(resource: DataResource, base_url: str) -> dict[str, Any]:
    access = "PUBLIC" if resource.opening == "open" else ACCESS.get(resource.sharing, "NON_PUBLIC")
    distributions = []
    if resource.opening == "open" and resource.share_mode == "table":
        distributions.append(
            {
                "@type": "dcat:Distribution",
                "dcat:accessURL": {"@id": f"{base_url}/open-data/{resource.code}"},
                "dcat:downloadURL": {"@id": f"{base_url}/open-data/{resource.code}.csv"},
                "dct:format": {"@id": f"{EU}/file-type/CSV"},
                "dcat:mediaType": "text/csv",
                "dct:license": {"@id": "https://creativecommons.org/licenses/by/4.0/"},
            }
        )
    distributions.append(
        {
            "@type": "dcat:Distribution",
            "dcat:accessURL": {"@id": f"{base_url}/api/v1/catalog/{resource.code}"},
            "dct:format": {"@id": f"{EU}/file-type/JSON"},
            "dct:description": {"@value": "共享交换接口（须部门授权）", "@language": "zh"},
        }
    )
    return {
        "@id": f"{base_url}/api/v1/catalog/{resource.code}",
        "@type": "dcat:Dataset",
        "dct:identifier": resource.code,
        "dct:title": {"@value": resource.name, "@language": "zh"},
        "dct:description": {"@value": resource.description or resource.name, "@language": "zh"},
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": resource.provider.name},
        "dcat:keyword": [resource.topic, LIBRARIES[resource.library]],
        "dct:accrualPeriodicity": {"@id": f"{EU}/frequency/{FREQUENCY[resource.update_cycle]}"},
        "dct:accessRights": {"@id": f"{EU}/access-right/{access}"},
        "dct:issued": {"@value": resource.created_at.isoformat(), "@type": "xsd:dateTime"},
        "dct:modified": {"@value": resource.updated_at.isoformat(), "@type": "xsd:dateTime"},
        "dct:relation": [{"@id": f"{base_url}/api/v1/catalog/{code}"} for code in resource.related],
        "dcat:distribution": distributions,
    }
