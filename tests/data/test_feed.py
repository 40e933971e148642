"""The change feed and its subscriptions: every load's changes in commit order, as the grant
shows them, pulled after a cursor or pushed to a webhook signed SM2, at least once, in order,
retried, dead-lettered and replayed; each page one audit entry naming the people read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, sessionmaker

from qilu import seals
from qilu.audit.models import AuditEvent
from qilu.audit.service import verify
from qilu.data import feed, reading, sharing, subscriptions
from qilu.data.catalog import install_standard_catalog
from qilu.data.loading import load_rows
from qilu.data.models import DeadLetter, ShareGrant, Subscription
from qilu.errors import QiluError
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.roles import OPERATOR
from qilu.identity.service import audit_subject
from qilu.identity.signing_keys import sm2_key
from qilu.pii import Vault

from ..factories import make_person, make_service_client, make_staff, service_token
from ..identity.test_pages import register
from ..operations.test_system import sample, scrape

NOW = datetime.now(UTC)
CONSUMER = "370102-approval"
WANG, LI, ZHAO = "11010519491231002X", "370102199003073516", "370102198001010015"
PEOPLE = {
    WANG: ("王芳", "2", "1949-12-31", "370102"),
    LI: ("李强", "1", "1990-03-07", "370102"),
    ZHAO: ("赵磊", "1", "1980-01-01", "370103"),
}


def person(number: str, **changes: str) -> dict[str, Any]:
    name, sex, born, division = PEOPLE[number]
    return {
        "id_number": number,
        "name": name,
        "sex": sex,
        "birth_date": born,
        "household_division": division,
        **changes,
    }


def load(session: Session, vault: Vault, *rows: dict[str, Any]) -> None:
    load_rows(session, vault, "JC-RK-001", enumerate(rows, 1), source="t", actor=OPERATOR)


@pytest.fixture
def sessions(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint")


@pytest.fixture
def loaded(session: Session, vault: Vault, departments: None) -> None:
    install_standard_catalog(session)
    load(session, vault, person(WANG), person(LI), person(ZHAO))  # seq 1-3
    load(session, vault, person(LI, name="李刚"), person(WANG))  # seq 4: LI v2; WANG unchanged
    load(session, vault, person(LI, name="李刚", household_division="370103"))  # seq 5: LI v3


def consumer(session: Session, *, rows: dict[str, str] | None = None, listing: bool = True) -> Any:
    asked = sharing.request_access(
        session,
        "JC-RK-001",
        consumer=CONSUMER,
        fields=["id_number", "name", "household_division"],
        clear_fields=["name"],
        may_list=listing,
        row_conditions=rows,
        purpose="户籍业务同步本地副本",
        legal_basis="《政务数据共享条例》",
        valid_until=NOW + timedelta(days=30),
        actor=OPERATOR,
        now=NOW - timedelta(minutes=1),
    )
    sharing.decide(session, asked.id, approve=True, reason="同意", actor=OPERATOR)
    return ServiceCaller.of(make_service_client(session, CONSUMER).client)


def test_the_feed_holds_every_change_in_order_with_the_values_of_its_version(
    session: Session, vault: Vault, loaded: None
) -> None:
    me = consumer(session)
    page = feed.read_changes(session, vault, me, "JC-RK-001", after=0)
    assert [(c.seq, c.op, c.version) for c in page.changes] == [
        (1, "insert", 1),
        (2, "insert", 1),
        (3, "insert", 1),
        (4, "update", 2),
        (5, "update", 3),
    ]
    names = [c.data["name"] for c in page.changes]
    assert names == ["王芳", "李强", "赵磊", "李刚", "李刚"]  # LI's insert as it was then
    assert page.changes[1].data["household_division"] == "370102"
    assert page.changes[4].data["household_division"] == "370103"
    assert page.changes[0].data["id_number"] == "110105********002X"  # not granted in clear
    assert page.changes[0].masked == ["id_number"] and "sex" not in page.changes[0].data
    assert (page.next_after, page.latest) == (5, 5)
    later = feed.read_changes(session, vault, me, "JC-RK-001", after=3, limit=1)
    assert [c.seq for c in later.changes] == [4] and later.next_after == 4


def test_row_conditions_hold_and_a_record_leaving_them_is_told_once(
    session: Session, vault: Vault, loaded: None
) -> None:
    me = consumer(session, rows={"household_division": "370102"})
    page = feed.read_changes(session, vault, me, "JC-RK-001", after=0)
    assert [(c.seq, c.op) for c in page.changes] == [
        (1, "insert"),
        (2, "insert"),  # ZHAO (370103) never within the rows: absent
        (4, "update"),
        (5, "leave"),
    ]
    assert page.changes[-1].data == {"id_number": "370102********3516"}  # the key only
    assert page.next_after == 5


def test_a_feed_needs_a_grant_that_allows_listing_and_the_refusal_is_logged(
    session: Session, vault: Vault, loaded: None
) -> None:
    me = consumer(session, listing=False)
    with pytest.raises(reading.SharingRefused) as refused:
        feed.read_changes(session, vault, me, "JC-RK-001", after=0)
    assert refused.value.code == "sharing.listing_not_granted"
    stranger = ServiceCaller.of(make_service_client(session, "370000-health").client)
    with pytest.raises(reading.SharingRefused) as refused:
        feed.read_changes(session, vault, stranger, "JC-RK-001", after=0)
    assert refused.value.code == "sharing.no_grant"
    refusals = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "data.read_refused")
    ).all()
    assert len(refusals) == 2


def test_a_page_is_one_audit_entry_that_every_person_in_it_finds_in_their_record(
    session: Session, vault: Vault, loaded: None
) -> None:
    me = consumer(session)
    page = feed.read_changes(session, vault, me, "JC-RK-001", after=0)
    feed.log_page(page, session)
    (entry,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "data.read")).all()
    assert entry.details["records"] == 5 and entry.details["feed"] == {"after": 0, "to": 5}
    assert entry.details["masked"] == ["id_number"]
    for number in (WANG, LI, ZHAO):
        uses = reading.uses_of(session, audit_subject(vault, number))
        assert [u.id for u in uses] == [entry.id]
    assert WANG not in json.dumps(entry.details)
    assert verify(session).is_intact


def test_the_api_pulls_after_a_cursor_and_refuses_a_bad_one_with_a_code(
    session: Session, vault: Vault, loaded: None, client: Any
) -> None:
    consumer(session)
    token = _token(client, session)
    answer = client.get(
        "/api/v1/data/JC-RK-001/changes?after=2&limit=2", headers={"Authorization": token}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [c["seq"] for c in body["changes"]] == [3, 4]
    assert body["next_after"] == 4 and body["latest"] == 5
    bad = client.get("/api/v1/data/JC-RK-001/changes?after=-1", headers={"Authorization": token})
    assert bad.status_code == 422, bad.text  # the API's documented answer to a bad parameter
    assert bad.json()["error"]["field"] == "after" and "不" in bad.json()["error"]["message"]


def _token(client: Any, session: Session) -> str:
    return service_token(client, session, CONSUMER)["Authorization"]


class Subscriber:
    """A webhook that answers as told and keeps what it took."""

    def __init__(self) -> None:
        self.up = True
        self.taken: list[dict[str, Any]] = []
        self.bodies: list[tuple[bytes, dict[str, str]]] = []

    def __call__(
        self, url: str, *, content: bytes, headers: dict[str, str], timeout: float
    ) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("refused")
        self.bodies.append((content, headers))
        self.taken.extend(json.loads(content)["changes"])
        return httpx.Response(200)


def _due_now(session: Session) -> None:
    """Let a retry's back-off pass."""
    for found in session.scalars(select(Subscription)):
        found.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    session.flush()


def test_a_subscription_gets_every_change_in_order_signed_and_once_acknowledged(
    session: Session, vault: Vault, loaded: None, sessions: sessionmaker[Session]
) -> None:
    me = consumer(session)
    made = subscriptions.subscribe(
        session, vault, me, "JC-RK-001", "https://sys.example/hook", after=0
    )
    session.flush()
    hook = Subscriber()
    sent = subscriptions.deliver_due(sessions, vault, post=hook)
    assert sent == 5 and [c["seq"] for c in hook.taken] == [1, 2, 3, 4, 5]
    body, headers = hook.bodies[0]
    kid, key = sm2_key(session, vault)
    assert headers["Qilu-Key-Id"] == kid
    assert seals.verify(seals.SM2, key.public_key, bytes.fromhex(headers["Qilu-Signature"]), body)
    assert not seals.verify(
        seals.SM2, key.public_key, bytes.fromhex(headers["Qilu-Signature"]), body + b" "
    )
    session.refresh(made)
    assert (made.cursor, made.delivered, made.status) == (5, 5, "active")
    load(session, vault, person(ZHAO, name="赵雷"))  # a new change, after the first delivery
    assert subscriptions.deliver_due(sessions, vault, post=hook) == 1
    assert hook.taken[-1]["seq"] == 6 and hook.taken[-1]["data"]["name"] == "赵雷"
    assert subscriptions.deliver_due(sessions, vault, post=hook) == 0  # caught up


def test_an_unreachable_subscriber_is_retried_then_dead_lettered_and_replay_loses_nothing(
    session: Session, vault: Vault, loaded: None, sessions: sessionmaker[Session]
) -> None:
    me = consumer(session)
    made = subscriptions.subscribe(session, vault, me, "JC-RK-001", "http://sys.example/h", after=0)
    session.flush()
    hook = Subscriber()
    hook.up = False
    for attempt in range(1, subscriptions.MAX_ATTEMPTS + 1):
        assert subscriptions.deliver_due(sessions, vault, post=hook) == 0
        session.refresh(made)
        assert made.attempts == attempt and made.cursor == 0
        if attempt < subscriptions.MAX_ATTEMPTS:
            assert made.next_attempt_at > datetime.now(UTC) + timedelta(seconds=2**attempt - 2)
            assert subscriptions.due(session) == []  # backing off
        _due_now(session)
    assert made.status == "suspended" and "ConnectError" in made.last_error
    (letter,) = session.scalars(select(DeadLetter)).all()
    assert (letter.after_seq, letter.last_seq) == (0, 5)
    hook.up = True
    assert (
        subscriptions.deliver_due(sessions, vault, post=hook) == 0
    )  # stopped: nothing jumps ahead
    subscriptions.replay(session, me, made.id)
    session.flush()
    assert subscriptions.deliver_due(sessions, vault, post=hook) == 5
    assert [c["seq"] for c in hook.taken] == [1, 2, 3, 4, 5]
    session.refresh(letter)
    assert letter.resolved_at is not None
    subscriptions.replay(session, me, made.id, after=3)  # the consumer lost its copy: again
    session.flush()
    subscriptions.deliver_due(sessions, vault, post=hook)
    assert [c["seq"] for c in hook.taken][-2:] == [4, 5]


def test_a_subscription_stops_with_a_reason_when_the_grant_is_revoked(
    session: Session, vault: Vault, loaded: None, sessions: sessionmaker[Session]
) -> None:
    me = consumer(session)
    made = subscriptions.subscribe(session, vault, me, "JC-RK-001", "http://sys.example/h")
    assert made.cursor == 5  # from now on, by default
    grant = session.scalars(select(ShareGrant)).one()
    sharing.revoke(session, grant.id, reason="用途已完成", actor=OPERATOR)
    load(session, vault, person(WANG, name="王芳芳"))
    session.flush()
    assert subscriptions.deliver_due(sessions, vault, post=Subscriber()) == 0
    session.refresh(made)
    assert made.status == "suspended" and "撤销" in made.last_error


def test_a_subscription_refuses_a_bad_address_and_a_cursor_past_the_feed(
    session: Session, vault: Vault, loaded: None
) -> None:
    me = consumer(session)
    with pytest.raises(QiluError) as refused:
        subscriptions.subscribe(session, vault, me, "JC-RK-001", "ftp://x/y")
    assert refused.value.code == "feed.url" and refused.value.field == "url"
    with pytest.raises(QiluError) as refused:
        subscriptions.subscribe(session, vault, me, "JC-RK-001", "http://x/y", after=99)
    assert refused.value.code == "feed.after"
    other = ServiceCaller.of(make_service_client(session, "370000-health").client)
    made = subscriptions.subscribe(session, vault, me, "JC-RK-001", "http://x/y")
    with pytest.raises(QiluError) as refused:
        subscriptions.replay(session, other, made.id)
    assert refused.value.code == "feed.not_found"


def test_subscriptions_are_made_shown_replayed_and_cancelled_over_http(
    session: Session, vault: Vault, loaded: None, client: Any
) -> None:
    consumer(session)
    token = {"Authorization": _token(client, session)}
    made = client.post(
        "/api/v1/data/JC-RK-001/subscriptions",
        json={"url": "https://sys.example/hook", "after": 2},
        headers=token,
    )
    assert made.status_code == 201, made.text
    shown = made.json()
    assert (shown["cursor"], shown["latest"], shown["status"]) == (2, 5, "active")
    assert "dead_letters" not in shown
    listed = client.get("/api/v1/data/subscriptions", headers=token).json()["subscriptions"]
    assert [s["id"] for s in listed] == [shown["id"]]
    detail = client.get(f"/api/v1/data/subscriptions/{shown['id']}", headers=token).json()
    assert detail["dead_letters"] == [] and detail["url"] == "https://sys.example/hook"
    replayed = client.post(
        f"/api/v1/data/subscriptions/{shown['id']}/replay", json={"after": 0}, headers=token
    )
    assert replayed.status_code == 200 and replayed.json()["cursor"] == 0
    past = client.post(
        f"/api/v1/data/subscriptions/{shown['id']}/replay", json={"after": -1}, headers=token
    )
    assert past.status_code == 422 and past.json()["error"]["field"] == "after"
    cancelled = client.delete(f"/api/v1/data/subscriptions/{shown['id']}", headers=token)
    assert cancelled.json()["status"] == "cancelled"
    bad = client.post(
        "/api/v1/data/JC-RK-001/subscriptions", json={"url": "ftp://x/y"}, headers=token
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "feed.url"
    stranger = service_token(client, session, "370000-health")
    session.commit()  # the refused read below rolls back to here
    hidden = client.get(
        f"/api/v1/data/subscriptions/{shown['id']}",
        headers=stranger,
    )
    assert hidden.status_code == 404


def test_a_subscriptions_lag_is_on_the_exchange_page_and_in_the_metrics(
    app: Any, session: Session, vault: Vault, loaded: None, client: Any
) -> None:
    me = consumer(session)
    made = subscriptions.subscribe(session, vault, me, "JC-RK-001", "http://s.example/h", after=2)
    text = scrape(app, client)
    assert sample(text, "qilu_feed_lag", subscription=str(made.id), consumer=CONSUMER) == 3
    provider = make_person(session, vault, name="李博永", id_number="370102196810318934")
    make_staff(session, provider, "370000-public_security", "data_steward")
    session.commit()
    register(client, name="李博永", id_number="370102196810318934")
    page = client.get("/workbench/exchange").text
    row = page[page.index(f'data-subscription="{made.id}"') :]
    assert "<td data-lag>3</td>" in row[: row.index("</tr>")]
