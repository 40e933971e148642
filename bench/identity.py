"""One-login figures: `python -m bench.identity [--seconds S]`.

In-process: ID-token verification (signature, iss, aud, exp) per second. Over HTTP, against
`qilu serve --workers 2` on a PostgreSQL store, with wrk as the load: userinfo requests per second
beside a plain endpoint of the same server (the code check, which touches no database) as the
ceiling, and password sign-ins per second against the argon2 ceiling (cores ÷ hash time).
Targets on the 2-core reference machine: ≥ 10,000 verifications/s, userinfo ≥ 1,500/s,
sign-ins ≥ 80 % of the argon2 ceiling, single-sign-on flows (authorize → token → userinfo for a
signed-in browser, chained by bench/oidc_flow.lua) ≥ 300/s, token refreshes ≥ 500/s.

Issue 12 adds: silent sign-on for a system the person agreed to before (the remembered consent
looked up on every authorize) as a share of the flows of an administrator-agreed system (target
≥ 0.9 ×), and introspection (RFC 7662: client authentication, token look-up) beside
userinfo (target ≥ 0.5 × userinfo: it authenticates the caller, a second look-up).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench import stores
from bench.server import served
from qilu.db import make_engine
from qilu.demo.service import generate
from qilu.identity import oidc_consents
from qilu.identity.accounts import register_resident
from qilu.identity.models import Person, StaffMember
from qilu.identity.oidc_clients import register_client, register_service_client
from qilu.identity.passwords import HASHER, hash_password
from qilu.identity.roles import OPERATOR
from qilu.identity.service import id_number_of
from qilu.identity.signing_keys import current_key, published_jwks
from qilu.pii import load_vault
from qilu.settings import Settings

PASSWORD = "Bench-Pass-2026"


def id_token_verification(settings: Settings, seconds: float) -> float:
    with Session(make_engine(settings)) as session, session.begin():
        kid, key = current_key(session, load_vault(settings))
        keys = KeySet.import_key_set(published_jwks(session))  # type: ignore[arg-type]
    now = int(time.time())
    claims = {
        "iss": "http://127.0.0.1",
        "aud": ["client"],
        "sub": "x" * 40,
        "iat": now,
        "exp": now + 3600,
        "acr": "3",
    }
    token = jwt.encode({"alg": "RS256", "kid": kid}, claims, key)
    registry = JWTClaimsRegistry(
        iss={"essential": True, "value": "http://127.0.0.1"},
        aud={"essential": True, "value": "client"},
    )
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(200):
            registry.validate(jwt.decode(token, keys).claims)
        count += 200
    return count / (time.perf_counter() - started)


def wrk(url: str, seconds: int, header: str | None = None, form: str | None = None) -> float:
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s", url]
    if header:
        command[1:1] = ["-H", header]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if form is not None:  # a POST of a form body, the same each time
            script.write(
                'wrk.method = "POST"\n'
                f"wrk.body = {form!r}\n"
                'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
            )
            script.flush()
            command[1:1] = ["-s", script.name]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise RuntimeError(f"{non_2xx.group(1)} failed responses from {url}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


@dataclass(frozen=True)
class Prepared:
    settings: Settings
    number: str
    client_id: str  # administrator-agreed (first party)
    agreed_id: str  # agreed to by the person once (remembered consent)
    api: tuple[str, str]  # a department system's credentials (introspection)


def prepare(folder: Path, database: str) -> Prepared:
    """A PostgreSQL store with residents, one account, two public clients (one the
    administrator agreed for, one the person agreed to) and a department system."""
    settings = Settings(
        data_dir=folder,
        database_url=database,
        pii_key=secrets.token_hex(16),
        index_key=secrets.token_hex(32),
        log_level="warning",
    )
    engine = make_engine(settings)
    generate(engine, settings, scale=2_000, seed=1, entities=0)
    vault = load_vault(settings)
    with Session(engine) as session, session.begin():
        person = session.scalars(
            select(Person)
            .where(
                Person.birth_date < date(1990, 1, 1),
                Person.id.not_in(select(StaffMember.person_id)),
            )
            .limit(1)
        ).one()
        number = id_number_of(vault, person)
        account = register_resident(
            session,
            vault,
            name=person.name,
            id_number=number,
            password=PASSWORD,
            profile="standard",
        )
        client = register_client(
            session,
            name="bench",
            redirect_uris=["http://127.0.0.1:9/cb"],
            public=True,
            first_party=True,
            actor=OPERATOR,
        )
        agreed = register_client(
            session, name="bench-agreed", redirect_uris=[REDIRECT], public=True, actor=OPERATOR
        )
        oidc_consents.remember(
            session, account, agreed.client.client_id, "openid profile", client_address=None
        )
        api = register_service_client(
            session, name="bench-api", department_code="370000-bigdata", actor=OPERATOR
        )
        return Prepared(
            settings,
            number,
            client.client.client_id,
            agreed.client.client_id,
            (api.client.client_id, api.secret or ""),
        )


REDIRECT = "http://127.0.0.1:9/cb"
VERIFIER = secrets.token_urlsafe(48)
CHALLENGE = (
    base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
)


def signed_in_cookie(base: str, number: str) -> str:
    """Sign in once as a browser would; the session cookie, for the flows that follow."""
    with httpx.Client(base_url=base) as browser:
        browser.get("/account/sign-in")
        browser.post(
            "/account/sign-in",
            data={
                "id_number": number,
                "password": PASSWORD,
                "csrf_token": browser.cookies["qilu_csrf"],
            },
        )
        return f"qilu_session={browser.cookies['qilu_session']}"


def access_token(base: str, cookie: str, client_id: str) -> str:
    with httpx.Client(base_url=base, headers={"Cookie": cookie}) as browser:
        back = browser.get(
            "/oidc/authorize",
            params={
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECT,
                "scope": "openid profile",
                "code_challenge": CHALLENGE,
                "code_challenge_method": "S256",
            },
        ).headers["location"]
        code = parse_qs(urlsplit(back).query)["code"][0]
        token = browser.post(
            "/oidc/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": client_id,
                "redirect_uri": REDIRECT,
                "code_verifier": VERIFIER,
            },
        ).json()
        return str(token["access_token"])


def chained(base: str, mode: str, seconds: int, cookie: str, client_id: str) -> float:
    """Flows (authorize → token → userinfo) or refreshes per second, driven by wrk's Lua."""
    script = Path(__file__).with_name("oidc_flow.lua")
    command = ["wrk", "-t8", "-c8", f"-d{seconds}s", "-s", str(script), base, "--"]
    command += [mode, cookie, client_id, quote(REDIRECT, safe=""), VERIFIER, CHALLENGE]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = re.search(r"completed=(\d+) failures=(\d+) seconds=([\d.]+)", out)
    assert found, out
    completed, failures, elapsed = int(found[1]), int(found[2]), float(found[3])
    if failures:
        raise RuntimeError(f"{failures} failed {mode} steps")
    return completed / elapsed


def sign_ins(base: str, number: str, seconds: float, threads: int) -> float:
    def worker(_: int) -> int:
        done = 0
        with httpx.Client(base_url=base, timeout=30) as client:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                token = secrets.token_urlsafe(16)
                response = client.post(
                    "/account/sign-in",
                    cookies={"qilu_csrf": token},
                    data={"id_number": number, "password": PASSWORD, "csrf_token": token},
                )
                if response.status_code != 303:
                    raise RuntimeError(f"sign-in failed: {response.status_code}")
                done += 1
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(worker, range(threads)))
    return total / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--postgres",
        default=stores.DEFAULT_SERVER,
        help="server to create a throw-away database on",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed for the HTTP figures: apt-get install wrk")
    with stores.throwaway_database(args.postgres) as url:
        run(args.seconds, url)


def run(seconds: int, database: str) -> None:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="qilu-bench-") as folder:
        prepared = prepare(Path(folder), database)
        settings, number, client_id = prepared.settings, prepared.number, prepared.client_id
        rate = id_token_verification(settings, 3)
        print(f"ID-token verification in-process: {rate:,.0f}/s (target ≥ 10,000/s)")
        stored = hash_password(PASSWORD)
        started = time.perf_counter()
        for _ in range(20):
            HASHER.verify(stored, PASSWORD)
        hash_seconds = (time.perf_counter() - started) / 20
        ceiling = cores / hash_seconds
        env = {
            "QILU_DATA_DIR": folder,
            "QILU_DATABASE_URL": database,
            "QILU_PII_KEY": settings.pii_key.get_secret_value(),  # type: ignore[union-attr]
            "QILU_INDEX_KEY": settings.index_key.get_secret_value(),  # type: ignore[union-attr]
        }
        with served(env, 8790) as base:
            cookie = signed_in_cookie(base, number)
            token = access_token(base, cookie, client_id)
            plain = wrk(f"{base}/api/v1/codes/check?value=11010519491231002X", seconds)
            info = wrk(f"{base}/oidc/userinfo", seconds, f"Authorization: Bearer {token}")
            flows = chained(base, "flow", seconds, cookie, client_id)
            refreshes = chained(base, "refresh", seconds, cookie, client_id)
            silent = chained(base, "flow", seconds, cookie, prepared.agreed_id)
            basic = base64.b64encode(":".join(prepared.api).encode()).decode()
            introspections = wrk(
                f"{base}/oidc/introspect",
                seconds,
                f"Authorization: Basic {basic}",
                form=f"token={token}",
            )
            print(f"plain endpoint (code check, no database): {plain:,.0f} requests/s")
            print(
                f"userinfo (token look-up, claims): {info:,.0f} requests/s "
                f"= {info / plain:.2f} × plain (target ≥ 1,500/s)"
            )
            print(
                f"single sign-on flows (authorize → token → userinfo, signed-in browser): "
                f"{flows:,.0f}/s = {flows / plain:.3f} × plain (target ≥ 300/s)"
            )
            print(
                f"token refreshes (rotation, reuse check, audit entry): {refreshes:,.0f}/s "
                f"= {refreshes / plain:.3f} × plain (target ≥ 500/s)"
            )
            print(
                f"silent sign-on, consent remembered (flows as above): {silent:,.0f}/s "
                f"= {silent / flows:.2f} × administrator-agreed flows (target ≥ 0.9 ×)"
            )
            print(
                f"introspection (client authentication, token look-up): "
                f"{introspections:,.0f} requests/s = {introspections / info:.2f} × userinfo "
                f"= {introspections / plain:.2f} × plain (target ≥ 0.5 × userinfo)"
            )
            rate = sign_ins(base, number, seconds, threads=4)
            print(
                f"argon2id verify: {hash_seconds * 1000:.0f} ms → ceiling {ceiling:.1f} sign-ins/s "
                f"on {cores} cores"
            )
            print(
                f"password sign-ins over HTTP: {rate:.1f}/s = {rate / ceiling:.0%} of the "
                f"ceiling (target ≥ 80 %) = {rate / plain:.4f} × plain"
            )


if __name__ == "__main__":
    main()
