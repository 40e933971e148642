"""The `qilu` command: run the platform, manage its store, generate data, check codes."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from qilu import __version__
from qilu.codes.check import check_lines
from qilu.db import describe_database_error, make_engine, upgrade
from qilu.errors import QiluError
from qilu.settings import Settings

err = Console(stderr=True)


class CliContext:
    """What every command shares: the settings of this run, and its engine once needed."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings)
        return self._engine


pass_context = click.make_pass_decorator(CliContext)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qilu")
def cli() -> None:
    """Qilu (齐鲁): a province's digital-government platform.

    Settings come from QILU_* environment variables (see the README).
    """


@cli.command()
@click.option("--host", help="Address to listen on (default QILU_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default QILU_PORT, 8000).")
@click.option("--scale", type=click.IntRange(min=100), help="Residents to generate the first time.")
@click.option(
    "--no-simulation", is_flag=True, help="No simulated devices reporting while the demo runs."
)
@pass_context
def demo(
    ctx: CliContext, host: str | None, port: int | None, scale: int | None, no_simulation: bool
) -> None:
    """Set up the embedded demo (SQLite, synthetic Shandong) and serve it."""
    from qilu.demo.service import prepare_demo

    with _progress() as progress:
        summary = prepare_demo(ctx.engine, ctx.settings, scale=scale, progress=progress)
    _ensure_signing_key(ctx)
    click.echo(summary.describe(_base_url(ctx.settings, host, port)))
    if not no_simulation:
        from qilu.demo.monitoring import start_live

        start_live(ctx.engine, ctx.settings)
        click.echo("监测：历下区的设备在持续上报（模拟），一分钟后出现新的预警")
    _serve(ctx.settings, host, port)


@cli.command()
@click.option("--host", help="Address to listen on (default QILU_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default QILU_PORT, 8000).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@pass_context
def serve(ctx: CliContext, host: str | None, port: int | None, workers: int) -> None:
    """Serve the web application on an existing, migrated store."""
    from qilu.db import require_current_schema

    require_current_schema(ctx.engine)
    _ensure_signing_key(ctx)
    click.echo(f"Qilu 运行于 {_base_url(ctx.settings, host, port)}/")
    _serve(ctx.settings, host, port, workers)


@cli.group()
def db() -> None:
    """The store: migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
@pass_context
def db_upgrade(ctx: CliContext, revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from qilu.db import current_revision

    upgrade(ctx.engine, revision)
    if revision == "head":
        _ensure_signing_key(ctx)
    click.echo(f"数据库已升级到 {current_revision(ctx.engine)}")


def _ensure_signing_key(ctx: CliContext) -> None:
    """The OIDC provider's first key exists before anyone fetches the JWKS (issue 12)."""
    from sqlalchemy.orm import Session

    from qilu.identity.signing_keys import ensure_key
    from qilu.pii import load_vault

    with Session(ctx.engine) as session, session.begin():
        ensure_key(session, load_vault(ctx.settings))


@cli.command()
@click.option(
    "--scale",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Residents to generate.",
)
@click.option("--seed", type=int, default=2020, show_default=True, help="Random seed.")
@click.option("--entities", type=click.IntRange(min=0), help="Legal entities (default scale/7).")
@click.option("--workers", type=click.IntRange(min=1), help="Generator processes.")
@click.option("--reset", is_flag=True, help="Delete earlier synthetic data first.")
@click.option(
    "--files",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the province as the files its systems export (机构, 人口, 法人, 人员 CSV) into "
    "this folder instead of storing it; load them as the README's going-live walk does.",
)
@pass_context
def seed(
    ctx: CliContext,
    scale: int,
    seed: int,
    entities: int | None,
    workers: int | None,
    reset: bool,
    folder: Path | None,
) -> None:
    """Generate a synthetic Shandong: residents, entities, departments, staff."""
    from qilu.demo.service import generate

    if folder is not None:
        from qilu.demo.files import write_files
        from qilu.demo.seed import SeedPlan

        written = write_files(folder, SeedPlan.for_scale(scale, seed, entities))
        click.echo(
            f"已写入 {folder}：机构 {written.departments:,}，居民 {written.residents:,}，"
            f"法人 {written.entities:,}，人员 {written.staff:,}"
        )
        return

    with _progress() as progress:
        report = generate(
            ctx.engine,
            ctx.settings,
            scale=scale,
            seed=seed,
            entities=entities,
            workers=workers,
            reset=reset,
            progress=progress,
        )
    click.echo(
        f"已生成：居民 {report.residents:,}，法人 {report.entities:,}，"
        f"部门 {report.departments:,}，工作人员 {report.staff:,}；"
        f"数据资源记录 {report.library_records:,}"
    )


@cli.group()
def users() -> None:
    """Accounts: add one, reset a password (the password is read from standard input)."""


@users.command("add")
@click.option("--id-number", required=True, help="The resident's ID number.")
@click.option("--name", required=True, help="The name as in the population register.")
@pass_context
def users_add(ctx: CliContext, id_number: str, name: str) -> None:
    """Open an account for a resident of the register (real-name check as in the portal)."""
    from sqlalchemy.orm import Session

    from qilu.identity.accounts import register_resident
    from qilu.pii import load_vault

    password = _read_password()
    with Session(ctx.engine) as session, session.begin():
        account = register_resident(
            session,
            load_vault(ctx.settings),
            name=name,
            id_number=id_number,
            password=password,
            profile=ctx.settings.security_profile,
            client_address="cli",
        )
        number = account.id
    click.echo(f"已开通账号 {number}：{name}")


@users.command("reset-password")
@click.argument("id_number")
@pass_context
def users_reset_password(ctx: CliContext, id_number: str) -> None:
    """Set a new password for the account of ID_NUMBER and unlock it."""
    from sqlalchemy.orm import Session

    from qilu.identity.accounts import account_of, set_password
    from qilu.pii import load_vault

    password = _read_password()
    vault = load_vault(ctx.settings)
    with Session(ctx.engine) as session, session.begin():
        account = account_of(session, vault, id_number)
        set_password(
            session,
            vault,
            account,
            password,
            ctx.settings.security_profile,
            actor_person_id=None,
            client_address="cli",
        )
        number = account.id
    click.echo(f"已重置账号 {number} 的密码")


@users.command("grant")
@click.argument("id_number")
@click.option("--department", required=True, help="Department code, e.g. 370000-bigdata.")
@click.option("--role", required=True, help="window_clerk, approver, data_steward, …")
@pass_context
def users_grant(ctx: CliContext, id_number: str, department: str, role: str) -> None:
    """Make the resident with ID_NUMBER a civil servant of DEPARTMENT holding ROLE."""
    from sqlalchemy.orm import Session

    from qilu.identity.roles import OPERATOR, ROLES, grant_role
    from qilu.identity.service import find_person
    from qilu.pii import load_vault

    with Session(ctx.engine) as session, session.begin():
        person = find_person(session, load_vault(ctx.settings), id_number)
        grant_role(
            session,
            person_id=person.id,
            department_code=department,
            role=role,
            profile=ctx.settings.security_profile,
            actor=OPERATOR,
        )
        name = person.name
    click.echo(f"已授予 {name} {department} 的“{ROLES[role]}”角色")


def _read_password() -> str:
    """Hidden prompt on a terminal; otherwise the first line of standard input."""
    if sys.stdin.isatty():
        entered: str = click.prompt("密码", hide_input=True, confirmation_prompt="再次输入密码")
        return entered
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise QiluError("password.missing", "请在标准输入提供密码（一行）", field="password")
    return line


@cli.group()
def clients() -> None:
    """Department systems that sign their users in through Qilu (OIDC relying parties)."""


@clients.command("add")
@click.argument("name")
@click.option(
    "--redirect-uri",
    "redirect_uris",
    multiple=True,
    required=True,
    help="Exact callback address (repeat for several).",
)
@click.option(
    "--post-logout-redirect-uri",
    "logout_uris",
    multiple=True,
    help="Where the client may send people after signing out.",
)
@click.option("--public", is_flag=True, help="A client without a secret (must use PKCE S256).")
@click.option(
    "--first-party",
    is_flag=True,
    help="The administrator agrees for everyone (no consent page for the ordinary scopes).",
)
@click.option("--sector", help="Clients of one sector see the same pseudonymous sub.")
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The client's public keys (JWKS file): it authenticates with private_key_jwt, no secret.",
)
@click.option(
    "--allow-scope",
    "allowed_scopes",
    multiple=True,
    type=click.Choice(["id_number", "phone", "realname"]),
    help="A real-name scope it may ask people for (they still agree themselves).",
)
@click.option("--jwt-access-tokens", is_flag=True, help="RFC 9068 JWT access tokens.")
@click.option(
    "--sm2-id-tokens", is_flag=True, help="国密: sign its ID tokens with SM2 (/oidc/jwks/sm2)."
)
@click.option("--backchannel-logout-uri", help="Where Qilu POSTs logout tokens.")
@click.option("--frontchannel-logout-uri", help="Loaded in a hidden frame at sign-out.")
@pass_context
def clients_add(
    ctx: CliContext,
    name: str,
    redirect_uris: tuple[str, ...],
    logout_uris: tuple[str, ...],
    public: bool,
    first_party: bool,
    sector: str | None,
    jwks_file: Path | None,
    allowed_scopes: tuple[str, ...],
    jwt_access_tokens: bool,
    sm2_id_tokens: bool,
    backchannel_logout_uri: str | None,
    frontchannel_logout_uri: str | None,
) -> None:
    """Register a client; print its id and secret as JSON (the secret is shown only now)."""
    import json

    from sqlalchemy.orm import Session

    from qilu.identity.oidc_clients import Integration, parse_jwks, register_client
    from qilu.identity.roles import OPERATOR

    integration = Integration(
        jwks=parse_jwks(jwks_file.read_text(encoding="utf-8")) if jwks_file else None,
        allowed_scopes=allowed_scopes,
        jwt_access_tokens=jwt_access_tokens,
        sm2_id_tokens=sm2_id_tokens,
        backchannel_logout_uri=backchannel_logout_uri,
        frontchannel_logout_uri=frontchannel_logout_uri,
    )
    with Session(ctx.engine) as session, session.begin():
        new = register_client(
            session,
            name=name,
            redirect_uris=list(redirect_uris),
            public=public,
            sector=sector,
            first_party=first_party,
            post_logout_redirect_uris=list(logout_uris),
            integration=integration,
            actor=OPERATOR,
        )
        output = {
            "client_id": new.client.client_id,
            "client_secret": new.secret,
            "token_endpoint_auth_method": new.client.auth_method,
            "name": name,
            "redirect_uris": list(redirect_uris),
            "public": public,
        }
    click.echo(json.dumps(output, ensure_ascii=False, indent=2))


@clients.command("add-service")
@click.argument("name")
@click.option("--department", required=True, help="Code of the department it acts for.")
@click.option("--rate", type=int, help="Requests per second it may make (default: platform's).")
@pass_context
def clients_add_service(ctx: CliContext, name: str, department: str, rate: int | None) -> None:
    """Register a department system that calls the data APIs with its own credentials
    (client_credentials); print its id and secret as JSON (the secret is shown only now)."""
    import json

    from sqlalchemy.orm import Session

    from qilu.identity.oidc_clients import register_service_client
    from qilu.identity.roles import OPERATOR

    with Session(ctx.engine) as session, session.begin():
        new = register_service_client(
            session, name=name, department_code=department, rate_per_second=rate, actor=OPERATOR
        )
        output = {
            "client_id": new.client.client_id,
            "client_secret": new.secret,
            "name": name,
            "department": department,
        }
    click.echo(json.dumps(output, ensure_ascii=False, indent=2))


@cli.group()
def keys() -> None:
    """Keys the OIDC provider signs ID tokens with."""


@keys.command("rotate")
@click.option(
    "--compromised",
    is_flag=True,
    help="The old key may have leaked: sign with the new one at once and withdraw the old.",
)
@pass_context
def keys_rotate(ctx: CliContext, compromised: bool) -> None:
    """Publish a new signing key; it signs once relying parties' JWKS caches hold it."""
    from sqlalchemy.orm import Session

    from qilu.identity.signing_keys import PUBLISH_AHEAD, rotate
    from qilu.pii import load_vault

    with Session(ctx.engine) as session, session.begin():
        kid = rotate(session, load_vault(ctx.settings), compromised=compromised).kid
    if compromised:
        click.echo(f"新签名密钥 {kid} 已立即启用；旧密钥已撤下，旧令牌不再有效")
    else:
        minutes = int(PUBLISH_AHEAD.total_seconds() // 60)
        click.echo(
            f"新签名密钥 {kid} 已发布，{minutes} 分钟后开始签名；旧密钥在其令牌过期前仍可验签"
        )


@keys.command("rotate-pii")
@click.option(
    "--new-key",
    is_flag=True,
    help="Embedded store: make a new SM4 key first. With keys in the environment, set the new "
    "QILU_PII_KEY, QILU_PII_KEY_ID and QILU_PII_EARLIER_KEYS on every process instead.",
)
@click.option(
    "--new-index-key",
    is_flag=True,
    help="Embedded store: make a new HMAC-SM3 index key first. With keys in the environment, "
    "set the new QILU_INDEX_KEY, the old one in QILU_INDEX_EARLIER_KEYS and QILU_SUBJECT_KEY "
    "on every process instead.",
)
@click.option(
    "--forget-earlier",
    is_flag=True,
    help="Embedded store: drop the earlier keys once nothing is left under them.",
)
@pass_context
def keys_rotate_pii(
    ctx: CliContext, new_key: bool, new_index_key: bool, forget_earlier: bool
) -> None:
    """Re-encrypt personal data still under an earlier SM4 key with the current one and, if
    the index key changed, rebuild every blind index under the new one, in batches, while
    Qilu serves; run it again to resume."""
    from qilu import pii
    from qilu.operations import index_rotation, pii_rotation

    embedded = ctx.settings.pii_key is None
    if (new_key or new_index_key or forget_earlier) and not embedded:
        raise click.ClickException(
            "密钥由环境变量设置：请在每个进程上设置新的 QILU_PII_KEY、QILU_PII_KEY_ID，"
            "并把旧密钥放入 QILU_PII_EARLIER_KEYS（索引密钥：新的 QILU_INDEX_KEY，旧的放入 "
            "QILU_INDEX_EARLIER_KEYS），再运行本命令"
        )
    if new_key:
        click.echo(f"已生成新的个人信息密钥（编号 {pii.new_embedded_key(ctx.settings.data_dir)}）")
    if new_index_key:
        pii.new_embedded_index_key(ctx.settings.data_dir)
        click.echo("已生成新的索引密钥；旧索引密钥继续用作用户标识（sub）密钥")
    vault = pii.load_vault(ctx.settings)
    with _progress() as progress:
        rewritten = pii_rotation.rotate(ctx.engine, vault, progress=progress)
        rebuilt = (
            index_rotation.rebuild(ctx.engine, vault, progress=progress)
            if vault.index_rotating
            else None
        )
    left = pii_rotation.remaining(ctx.engine, vault)
    click.echo(
        f"已用密钥 {vault.key_id} 重新加密 {sum(rewritten.values()):,} 项密文，"
        f"仍用旧密钥的还有 {left:,} 项"
    )
    if rebuilt is not None:
        click.echo(f"已用新索引密钥重建 {sum(rebuilt.values()):,} 项索引，旧索引已全部重建")
    if left:
        sys.exit(1)
    if forget_earlier:
        pii.forget_earlier_keys(ctx.settings.data_dir)
        click.echo("旧密钥已删除")
    elif not embedded:
        click.echo(
            "可以从各进程的 QILU_PII_EARLIER_KEYS 中移除旧密钥了"
            + ("，并移除 QILU_INDEX_EARLIER_KEYS" if rebuilt is not None else "")
        )


@cli.group()
def data() -> None:
    """The data platform: the resource catalog and its libraries."""


@data.group("catalog")
def data_catalog() -> None:
    """The resource catalog (政务信息资源目录)."""


@data_catalog.command("install")
@pass_context
def catalog_install(ctx: CliContext) -> None:
    """Register the standard resources (four base libraries, theme and special libraries)."""
    from sqlalchemy.orm import Session

    from qilu.data.catalog import install_standard_catalog

    with Session(ctx.engine) as session, session.begin():
        added = install_standard_catalog(session)
        codes = [resource.code for resource in added]
    click.echo(
        f"已登记 {len(codes)} 项标准资源" + (f"：{'、'.join(codes)}" if codes else "（均已存在）")
    )


@data_catalog.command("publish")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@pass_context
def catalog_publish(ctx: CliContext, file: Any) -> None:
    """Register the resources described in FILE (YAML: one resource or a list of them)."""
    import yaml
    from sqlalchemy.orm import Session

    from qilu.data.catalog import parse_spec, register_resource
    from qilu.identity.roles import OPERATOR

    try:
        loaded = yaml.safe_load(file)
    except yaml.YAMLError as error:
        raise QiluError("catalog.yaml", f"{file.name} 不是有效的 YAML：{error}") from None
    entries = loaded if isinstance(loaded, list) else [loaded]
    specs = [parse_spec(entry) for entry in entries]  # all checked before any is written
    with Session(ctx.engine) as session, session.begin():
        for spec in specs:
            register_resource(session, spec, actor=OPERATOR)
    click.echo(f"已登记 {len(specs)} 项资源：{'、'.join(s.code for s in specs)}")


@data_catalog.command("export")
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-", show_default=True)
@pass_context
def catalog_export(ctx: CliContext, output: Any) -> None:
    """Write this platform's own catalog as JSON, for the province to cascade (`cascade`)."""
    import json

    from sqlalchemy.orm import Session

    from qilu.data.cascade import export

    with Session(ctx.engine) as session:
        entries = export(session)
    json.dump(entries, output, ensure_ascii=False, indent=1)
    output.write("\n")


@data_catalog.command("cascade")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--origin", required=True, help="the city catalog it comes from, e.g. 济南市")
@pass_context
def catalog_cascade(ctx: CliContext, file: Any, origin: str) -> None:
    """Register a city's exported catalog (FILE, from `qilu data catalog export`) under this
    province's catalog; running it again updates what that city brought before."""
    import json

    from sqlalchemy.orm import Session

    from qilu.data.cascade import cascade

    try:
        entries = json.load(file)
    except json.JSONDecodeError as error:
        raise QiluError("cascade.json", f"{file.name} 不是有效的 JSON：{error}") from None
    if not isinstance(entries, list):
        raise QiluError("cascade.json", f"{file.name} 须为资源描述的列表（JSON 数组）")
    with Session(ctx.engine) as session, session.begin():
        done = cascade(session, entries, origin=origin)
    click.echo(
        f"已级联{origin}目录：新增 {len(done.added)} 项，更新 {len(done.updated)} 项"
        + (f"（新增：{'、'.join(done.added)}）" if done.added else "")
    )


@data.command("api")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@pass_context
def data_api(ctx: CliContext, file: Any) -> None:
    """Register the department API described in FILE (YAML: code, name, provider, base_url,
    sharing, legal_basis, openapi — the OpenAPI 3 document, inline or as a file name beside it)."""
    import json
    from pathlib import Path

    import yaml
    from sqlalchemy.orm import Session

    from qilu.data.apis import register_api
    from qilu.identity.roles import OPERATOR

    try:
        loaded = yaml.safe_load(file)
    except yaml.YAMLError as error:
        raise QiluError("api.yaml", f"{file.name} 不是有效的 YAML：{error}") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("openapi"), str):
        document = Path(file.name).parent / loaded["openapi"]
        text = document.read_text("utf-8")
        loaded["openapi"] = json.loads(text) if document.suffix == ".json" else yaml.safe_load(text)
    with Session(ctx.engine) as session, session.begin():
        api = register_api(session, loaded, actor=OPERATOR)
        code, name = api.resource.code, api.resource.name
    click.echo(f"已登记接口 {code}（{name}），地址 {api.base_url}")


@data.command("load")
@click.argument("resource")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@pass_context
def data_load(ctx: CliContext, resource: str, file: str) -> None:
    """Load FILE (CSV, JSON Lines or XLSX) into RESOURCE: rows upserted by key; rejected rows
    listed in FILE.errors.csv. Exit 1 if any row was rejected (the valid ones are loaded)."""
    from pathlib import Path

    from rich.progress import DownloadColumn
    from sqlalchemy.orm import Session

    from qilu.data.catalog import get_resource
    from qilu.data.files import read_rows
    from qilu.data.loading import Layout, error_report, load_rows
    from qilu.identity.roles import OPERATOR
    from qilu.pii import load_vault

    path = Path(file)
    columns = ("{task.description}", BarColumn(), DownloadColumn(), TimeElapsedColumn())
    with (
        path.open("rb") as stream,
        Session(ctx.engine) as session,
        session.begin(),
        Progress(*columns, console=err) as progress,
    ):
        task = progress.add_task("读取", total=path.stat().st_size)
        fields = Layout.of(session, get_resource(session, resource)).fields

        def advance(rows: int) -> None:
            progress.update(task, completed=stream.tell(), description=f"{rows:,} 行")

        result = load_rows(
            session,
            load_vault(ctx.settings),
            resource,
            read_rows(stream, path.name, fields),
            source=path.name,
            actor=OPERATOR,
            progress=advance,
            workers=os.cpu_count() or 1,
        )
        report = error_report(result) if result.rejected else None
        summary = (
            f"{resource}：共 {result.total:,} 行，新增 {result.inserted:,}，"
            f"更新 {result.updated:,}，未变 {result.unchanged:,}，拒绝 {result.rejected:,}，"
            f"提示 {len(result.warnings):,}"
        )
    click.echo(summary)
    if report is not None:
        target = path.with_name(path.name + ".errors.csv")
        target.write_text(report, encoding="utf-8")
        click.echo(f"被拒绝的行及原因见 {target}")
        sys.exit(1)


@cli.group()
def org() -> None:
    """The organisation tree (机构) and its staff, from the 编制/组织 systems' exports."""


@org.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@pass_context
def org_load(ctx: CliContext, file: str) -> None:
    """Load FILE (CSV or XLSX): departments (机构编码, 机构名称, 机构类别, 层级, 行政区划,
    上级机构编码, 统一社会信用代码[, 撤并至机构编码]) or staff (公民身份号码, 姓名, 机构编码,
    职务, 角色), told by the columns. Rejected rows are listed in FILE.errors.csv; exit 1 if any
    (the others load)."""
    from pathlib import Path

    from sqlalchemy.orm import Session

    from qilu.data import organisation
    from qilu.pii import load_vault

    path = Path(file)
    with path.open("rb") as stream, Session(ctx.engine) as session, session.begin():
        kind, rows = organisation.read(stream, path.name)
        if kind == "departments":
            result = organisation.load_departments(session, rows, source=path.name)
        else:
            result = organisation.load_staff(
                session,
                load_vault(ctx.settings),
                rows,
                source=path.name,
                profile=ctx.settings.security_profile,
            )
    what = "机构" if kind == "departments" else "人员"
    click.echo(
        f"{what}：共 {result.total:,} 行，新增 {result.added:,}，更新 {result.changed:,}，"
        f"未变 {result.unchanged:,}，拒绝 {result.rejected:,}"
    )
    if result.problems:
        target = path.with_name(path.name + ".errors.csv")
        target.write_text(organisation.error_report(result), encoding="utf-8")
        click.echo(f"被拒绝的行及原因见 {target}")
        sys.exit(1)


@cli.command()
@click.argument("destination", type=click.Path(file_okay=False, path_type=Path))
@pass_context
def backup(ctx: CliContext, destination: Path) -> None:
    """Back the store up into DESTINATION (a new folder): the database (pg_dump, or SQLite's
    online backup), the data folder's files, and a check of the personal-data keys, with a
    manifest of SM3 digests. Runs while Qilu serves."""
    from qilu.operations.backup import make_backup

    click.echo(make_backup(ctx.settings, ctx.engine, destination).describe())


@cli.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_context
def restore(ctx: CliContext, source: Path) -> None:
    """Restore the backup in SOURCE into an empty database and an empty data folder, under the
    keys it was made with; then run `qilu audit verify` and `qilu archive verify`."""
    from qilu.operations.backup import restore_backup

    manifest = restore_backup(ctx.settings, ctx.engine, source)
    click.echo(
        f"已恢复 {manifest['made_at']} 的备份（数据库版本 {manifest['revision']}）；"
        "请运行 qilu db upgrade、qilu audit verify 和 qilu archive verify"
    )


@cli.group()
def audit() -> None:
    """The SM3-chained audit log."""


@audit.command("verify")
@pass_context
def audit_verify(ctx: CliContext) -> None:
    """Walk every chain and report the first broken link; exit 1 if there is one."""
    from sqlalchemy.orm import Session

    from qilu.audit.service import record, verify

    with Session(ctx.engine) as session:
        result = verify(session)
    with Session(ctx.engine) as session, session.begin():  # for 系统运行 to show
        link = result.broken
        where = None if link is None else f"链 {link.chain} 第 {link.seq} 条"
        details = {"entries": result.entries, "intact": link is None, "broken": where}
        record(session, "system.audit_verified", details=details)
    if result.broken is None:
        click.echo(f"审计链完整：共 {result.entries:,} 条记录，逐条校验通过")
        return
    broken = result.broken
    click.echo(f"审计链断裂（链 {broken.chain}，第 {broken.seq} 条）：{broken.reason}")
    click.echo(f"此前 {result.entries:,} 条记录校验通过")
    sys.exit(1)


@audit.command("evidence")
@click.argument("call_id")
@click.option(
    "--answer",
    "answer_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="该次调用收到的应答正文（文件），核对其摘要",
)
@pass_context
def audit_evidence(ctx: CliContext, call_id: str, answer_file: Path | None) -> None:
    """Print a shared call's evidence and verify its SM2 signature (and, given the answer a
    party kept, that it is the answer signed); exit 1 if anything does not hold."""
    from sqlalchemy.orm import Session

    from qilu.data.evidence import check, statement

    answer = answer_file.read_bytes() if answer_file else None
    with Session(ctx.engine) as session:
        checked = check(session, call_id.strip(), answer)
        click.echo(statement(checked.evidence).decode())
        click.echo(f"密钥 {checked.evidence.kid}，签名 {checked.evidence.signature.hex()}")
    holds = "有效" if checked.signature_holds else "无效（存证被改动或密钥不符）"
    click.echo(f"SM2 签名：{holds}")
    if checked.answer_matches is not None:
        matches = "与存证摘要一致" if checked.answer_matches else "与存证摘要不符"
        click.echo(f"应答正文：{matches}")
    if not checked.holds:
        sys.exit(1)


@audit.command("archive")
@pass_context
def audit_archive(ctx: CliContext) -> None:
    """Write the audit entries older than QILU_AUDIT_ARCHIVE_DAYS (at least 183) that no
    earlier archive holds to a JSON Lines file in the data folder's audit-archive, for
    write-once storage; its SM3 digest is recorded. Entries are never deleted."""
    from sqlalchemy.orm import Session

    from qilu.operations.retention import archive_audit

    days = ctx.settings.audit_archive_days
    with Session(ctx.engine) as session, session.begin():
        archived = archive_audit(session, ctx.settings.data_dir, days=days)
    if archived.path is None:
        click.echo(f"没有早于 {days} 天且尚未归档的审计记录")
    else:
        click.echo(f"已将 {archived.entries:,} 条审计记录写入 {archived.path}")


@cli.group()
def outbox() -> None:
    """Effects that run after their transaction commits (archive packages, …)."""


@outbox.command("sweep")
@pass_context
def outbox_sweep(ctx: CliContext) -> None:
    """Run every effect that is due, once."""
    from qilu.db import make_sessionmaker
    from qilu.outbox.service import sweep
    from qilu.pii import load_vault
    from qilu.workers import handlers

    done = sweep(make_sessionmaker(ctx.engine), handlers(ctx.settings, load_vault(ctx.settings)))
    click.echo(f"已执行 {done} 项")


@outbox.command("run")
@pass_context
def outbox_run(ctx: CliContext) -> None:
    """A worker: sweep the outbox until stopped (then set QILU_OUTBOX_INTERVAL=0 on the web
    processes so they leave it to the workers)."""
    from qilu.db import make_sessionmaker
    from qilu.pii import load_vault
    from qilu.workers import run_worker

    run_worker(make_sessionmaker(ctx.engine), ctx.settings, load_vault(ctx.settings))


@cli.group()
def archive() -> None:
    """Electronic record packages (单套制) of finished applications."""


@archive.command("build")
@click.option("--limit", default=500, show_default=True, help="At most this many packages.")
@pass_context
def archive_build(ctx: CliContext, limit: int) -> None:
    """Package the finished applications not yet archived (the outbox archives them after
    they finish; this catches any that were not, such as a store restored from before)."""
    from sqlalchemy.orm import Session

    from qilu.filestore import file_store
    from qilu.pii import load_vault
    from qilu.services import archive as archiving

    vault, data_dir = load_vault(ctx.settings), ctx.settings.data_dir
    with Session(ctx.engine) as session, session.begin():
        waiting = archiving.pending(session, limit)
        for application in waiting:
            archiving.archive_application(
                session,
                vault,
                file_store(data_dir),
                data_dir,
                application,
                fonds=ctx.settings.archive_fonds,
                scanner=ctx.settings.archive_scanner,
            )
    click.echo(f"已归档 {len(waiting)} 件")


@archive.command("verify")
@click.argument("number", required=False)
@pass_context
def archive_verify(ctx: CliContext, number: str | None) -> None:
    """Check packages (one by its application number, or all): both manifests, SM3 ourselves,
    and the tag manifest against the digest kept at archiving. Exit 1 if any fails."""
    from sqlalchemy.orm import Session

    from qilu.services import archive as archiving

    with Session(ctx.engine) as session:
        packages = _packages(session, number)
        failed = 0
        for package in packages:
            problems = archiving.verify(ctx.settings.data_dir, package)
            if problems:
                failed += 1
                click.echo(f"{package.application.number}：校验失败")
                for problem in problems:
                    click.echo(f"  {problem}")
    click.echo(f"共 {len(packages)} 个归档包，{len(packages) - failed} 个完好，{failed} 个校验失败")
    if failed:
        sys.exit(1)


def _packages(session: Any, number: str | None) -> list[Any]:
    """Every archive package, or the one of application `number` (a usage error if none)."""
    from sqlalchemy import select

    from qilu.services.models import Application, Archive

    statement = select(Archive).join(Application).order_by(Archive.id)
    if number:
        statement = statement.where(Application.number == number)
    packages = list(session.scalars(statement).all())
    if number and not packages:
        raise click.ClickException(f"没有申请编号为 {number} 的归档包")
    return packages


@archive.command("check")
@click.argument("number", required=False)
@pass_context
def archive_check(ctx: CliContext, number: str | None) -> None:
    """四性检测 (DA/T 70) of packages, one by its application number or all: authenticity,
    integrity, usability, security; each report is kept with the package's record. Exit 1 if
    any fails."""
    from sqlalchemy.orm import Session

    from qilu.services import archival

    settings = ctx.settings
    with Session(ctx.engine) as session, session.begin():
        packages = _packages(session, number)
        failed = 0
        for package in packages:
            report = archival.check(
                session,
                settings.data_dir,
                package,
                scanner=settings.archive_scanner,
                fonds=settings.archive_fonds,
            )
            verdict = archival.PASS if report.passed else archival.FAIL
            click.echo(f"{report.reference}（{package.application.number}）：{verdict}")
            for item in report.items:
                if item["结果"] != archival.PASS:
                    click.echo(f"  {item['性质']}·{item['检测项']}：{item['结果']}，{item['说明']}")
            failed += not report.passed
    click.echo(f"共 {len(packages)} 个归档包，{len(packages) - failed} 个通过四性检测")
    if failed:
        sys.exit(1)


@archive.command("transfer")
@click.option("--to", "target", type=click.Path(path_type=Path), required=True)
@pass_context
def archive_transfer(ctx: CliContext, target: Path) -> None:
    """Hand the packages not yet transferred to an archive system: each passes its 四性检测
    first, then goes to TARGET/<全宗号>/<年度>/<保管期限>/<档号>/ with its metadata and report
    beside it, and TARGET/移交清单.json lists the batch. Exit 1 if any was held back."""
    from sqlalchemy.orm import Session

    from qilu.services import archival

    settings = ctx.settings
    with Session(ctx.engine) as session, session.begin():
        done = archival.transfer(
            session,
            settings.data_dir,
            target,
            scanner=settings.archive_scanner,
            fonds=settings.archive_fonds,
        )
    click.echo(f"已移交 {len(done.sent)} 个归档包，移交清单：{done.manifest}")
    for reference, why in done.held:
        click.echo(f"  未移交 {reference}：{why}")
    if done.held:
        sys.exit(1)


@cli.group()
def national() -> None:
    """Reports to the 国家政务服务平台 (QILU_NATIONAL_URL), and a local receiver to try them on."""


@national.command("receiver")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8300, show_default=True)
@click.option(
    "--keys",
    default="http://127.0.0.1:8000/oidc/jwks/sm2",
    show_default=True,
    help="Qilu's SM2 public keys (its /oidc/jwks/sm2) the signatures are checked with.",
)
@click.option("--store", type=click.Path(path_type=Path), help="Keep accepted messages here.")
def national_receiver(host: str, port: int, keys: str, store: Path | None) -> None:
    """Run a local stand-in for the national platform's receiving end: it checks signatures,
    the national field sets and the codes in them, and acknowledges or refuses each message.
    Point Qilu at it with QILU_NATIONAL_URL=http://HOST:PORT/reports."""
    import uvicorn

    from qilu.services.national_receiver import jwks_keys, receiver_app

    click.echo(f"国家平台模拟接收端：http://{host}:{port}/reports（验签公钥 {keys}）")
    uvicorn.run(receiver_app(jwks_keys(keys), store), host=host, port=port, log_level="warning")


@national.command("collect")
@pass_context
def national_collect(ctx: CliContext) -> None:
    """Make the reports of what happened since the last collection (the sweeper does this every
    few seconds; this is for a store whose sweeper is not running)."""
    from sqlalchemy.orm import Session

    from qilu.pii import load_vault
    from qilu.services import national as reporting

    with Session(ctx.engine) as session, session.begin():
        made = reporting.collect(
            session, load_vault(ctx.settings), send=bool(ctx.settings.national_url)
        )
    click.echo(f"新生成上报记录 {made} 条")


@national.command("resend")
@pass_context
def national_resend(ctx: CliContext) -> None:
    """Queue every report not yet acknowledged or refused (after setting QILU_NATIONAL_URL)."""
    from sqlalchemy.orm import Session

    from qilu.services import national as reporting

    if not ctx.settings.national_url:
        raise click.ClickException("未设置 QILU_NATIONAL_URL，无处发送")
    with Session(ctx.engine) as session, session.begin():
        queued = reporting.resend(session)
    click.echo(f"已排队发送 {queued} 条")


@national.command("reconcile")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), help="Beijing day (default: yesterday).")
@pass_context
def national_reconcile(ctx: CliContext, day: datetime | None) -> None:
    """The day's reports by kind: made, acknowledged, refused (with why), still pending, and
    what the platform says it holds. Exit 1 on a refusal or a mismatch."""
    from sqlalchemy.orm import Session

    from qilu.services import national as reporting

    with Session(ctx.engine) as session:
        result = reporting.reconcile(
            session, day.date() if day else None, ctx.settings.national_url
        )
    click.echo(f"{result.day} 上报对账")
    names = {"pending": "待发送", "acknowledged": "已确认", "refused": "被拒收"}
    for kind in sorted(set(result.ours) | set(result.theirs or {})):
        counts = result.ours.get(kind, {})
        ours = "，".join(f"{names[s]} {counts[s]}" for s in names if counts.get(s))
        theirs = "" if result.theirs is None else f"；国家平台 {result.theirs.get(kind, 0)}"
        click.echo(f"  {kind}：{ours or '无'}{theirs}")
    for kind, subject, reason in result.refused:
        click.echo(f"  拒收 {kind} {subject}：{reason}")
    for kind in result.mismatched:
        click.echo(f"  不一致：{kind} 已确认数与国家平台所存不符")
    if result.refused or result.mismatched:
        sys.exit(1)


@cli.group()
def services() -> None:
    """The service catalog and the jobs around applications."""


@services.command("offers")
@pass_context
def services_offers(ctx: CliContext) -> None:
    """免申即享: scan the register and offer benefits to residents who qualify."""
    from sqlalchemy.orm import Session

    from qilu.pii import load_vault
    from qilu.services import offers

    with Session(ctx.engine) as session, session.begin():
        made = offers.scan(session, load_vault(ctx.settings))
    click.echo(f"新推送免申即享服务 {made} 项")


@services.command("install")
@pass_context
def services_install(ctx: CliContext) -> None:
    """Store the shipped catalog: new and changed items and chains as new versions."""
    from sqlalchemy.orm import Session

    from qilu.services.catalog import install_catalog

    with Session(ctx.engine) as session, session.begin():
        installed = install_catalog(session)
    click.echo(f"事项新增或更新 {installed.items_added} 个，一件事 {installed.chains_added} 个")


@cli.group()
def codes() -> None:
    """National codes: ID numbers (GB 11643) and USCCs (GB 32100)."""


@codes.command("check")
@click.argument("values", nargs=-1, required=True)
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def codes_check(values: tuple[str, ...], strict: bool) -> None:
    """Check ID numbers and USCCs; '-' reads one value per line from standard input.

    Prints `value<TAB>ok|error<TAB>details` per value; exits 0 only if all are valid.
    """
    lines = (line for value in values for line in (sys.stdin if value == "-" else [value]))
    if not check_lines(lines, sys.stdout, strict=strict):
        sys.exit(1)


@cli.group()
def monitor() -> None:
    """监测预警: telemetry from devices speaking HJ 212, JT/T 808 and SL 651."""


@monitor.command("decode")
@click.option(
    "--protocol",
    type=click.Choice(["hj212", "jt808", "sl651"]),
    required=True,
    help="hj212: one packet of text per line; jt808, sl651: one frame in hex per line.",
)
@click.argument("source", type=click.File("r", encoding="utf-8"))
def monitor_decode(protocol: str, source: TextIO) -> None:
    """Decode frames, one per line of SOURCE ('-': standard input), printing one JSON object per
    line: ok, error (a stable code), protocol, message, source, time and readings. Exits 1 if
    any frame was refused."""
    from qilu.monitor.protocols import PROTOCOLS, decode_lines

    refused = 0
    for decoded in decode_lines(PROTOCOLS[protocol], source):
        refused += not decoded["ok"]
        click.echo(json.dumps(decoded, ensure_ascii=False))
    if refused:
        sys.exit(1)


@monitor.command("listen")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@pass_context
def monitor_listen(ctx: CliContext, host: str) -> None:
    """Listen for devices on QILU_MONITOR_HJ212_PORT, _JT808_PORT and _SL651_PORT (0 turns
    one off) until stopped, answering each frame once it is safe: stored (the in-process bus)
    or held by NATS JetStream (QILU_MONITOR_BUS), for `qilu monitor work` to store."""
    import asyncio

    import uvloop  # libuv's event loop: the listener spends a third less CPU a frame (bench)

    from qilu.monitor.bus import Bus, JetStreamBus, LocalBus
    from qilu.monitor.listen import Listener

    settings = ctx.settings
    ports = {
        "hj212": settings.monitor_hj212_port,
        "jt808": settings.monitor_jt808_port,
        "sl651": settings.monitor_sl651_port,
    }
    _monitor_store(ctx)
    bus: Bus = (
        JetStreamBus(
            ctx.engine,
            settings.monitor_bus,
            stream=settings.monitor_stream,
            partitions=settings.monitor_partitions,
            retention_hours=settings.monitor_stream_hours,
        )
        if settings.monitor_bus
        else LocalBus(ctx.engine, retention_days=settings.monitor_retention_days)
    )

    async def serve() -> None:
        listener = Listener(
            bus,
            {k: v for k, v in ports.items() if v},
            host=host,
            mqtt_broker=settings.monitor_mqtt_broker,
            mqtt_client_id=settings.monitor_mqtt_client_id,
        )
        bound = await listener.start()
        click.echo("监听中：" + "，".join(f"{name} {port}" for name, port in bound.items()))
        await asyncio.Event().wait()

    try:
        uvloop.run(serve())
    except KeyboardInterrupt:
        click.echo("已停止")


@monitor.command("work")
@click.option(
    "--partitions",
    default="all",
    show_default=True,
    help="The stream's partitions this writer stores: all, or e.g. 0-7 or 0,2,4.",
)
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--ack-wait",
    default=10.0,
    show_default=True,
    type=click.FloatRange(1, 600),
    help="Seconds a batch may take before the stream gives it to this partition's writer again "
    "(set when a partition is first taken).",
)
@pass_context
def monitor_work(ctx: CliContext, partitions: str, batch_size: int, ack_wait: float) -> None:
    """Store what the listeners put on NATS JetStream (QILU_MONITOR_BUS) and run it through
    the rules, partition by partition, until stopped. Start as many as the province needs,
    each with its own partitions."""
    import uvloop

    from qilu.monitor.bus import Writer

    settings = ctx.settings
    if not settings.monitor_bus:
        raise click.UsageError("QILU_MONITOR_BUS 未设置：进程内总线由 qilu monitor listen 自己写入")
    taken = _partitions(partitions, settings.monitor_partitions)
    _monitor_store(ctx)
    writer = Writer(
        ctx.engine,
        settings.monitor_bus,
        taken,
        stream=settings.monitor_stream,
        retention_hours=settings.monitor_stream_hours,
        batch_size=batch_size,
        ack_wait=ack_wait,
        retention_days=settings.monitor_retention_days,
    )
    click.echo(f"写入分区：{','.join(map(str, taken))}")
    try:
        uvloop.run(writer.run())
    except KeyboardInterrupt:
        click.echo("已停止")


def _partitions(given: str, total: int) -> list[int]:
    """`all`, `0-7` or `0,2,4` as partition numbers, each below `total`."""
    if given == "all":
        return list(range(total))
    taken: set[int] = set()
    try:
        for part in given.split(","):
            low, _, high = part.partition("-")
            taken.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise click.BadParameter("写作 all、0-7 或 0,2,4", param_hint="--partitions") from None
    if not taken or max(taken) >= total or min(taken) < 0:
        raise click.BadParameter(f"分区编号须在 0–{total - 1} 之间", param_hint="--partitions")
    return sorted(taken)


def _monitor_store(ctx: CliContext) -> None:
    """The store at the current schema, with the shipped rules it lacks."""
    from sqlalchemy.orm import Session

    from qilu.db import upgrade
    from qilu.monitor import rules

    upgrade(ctx.engine)
    with Session(ctx.engine) as session, session.begin():
        rules.install(session, replace=False)


@monitor.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the listeners are.")
@click.option("--vehicles", default=70, show_default=True, type=click.IntRange(0, 100_000))
@click.option("--sources", default=15, show_default=True, type=click.IntRange(0, 100_000))
@click.option("--air", default=5, show_default=True, type=click.IntRange(0, 10_000))
@click.option("--hydro", default=6, show_default=True, type=click.IntRange(0, 10_000))
@click.option("--tanks", default=4, show_default=True, type=click.IntRange(0, 10_000))
@click.option("--seconds", default=120.0, show_default=True, type=click.FloatRange(1, 86_400))
@click.option(
    "--rate",
    type=click.FloatRange(0.1, 1_000_000),
    default=None,
    help="Frames per second from the whole fleet (default: each device at its own interval).",
)
@click.option(
    "--incident-after",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0, 86_400),
    help="Seconds before the scripted incidents start.",
)
@click.option("--no-incidents", is_flag=True, help="No scripted incidents.")
@pass_context
def monitor_simulate(
    ctx: CliContext,
    host: str,
    vehicles: int,
    sources: int,
    air: int,
    hydro: int,
    tanks: int,
    seconds: float,
    rate: float | None,
    incident_after: float,
    no_incidents: bool,
) -> None:
    """Drive the synthetic province's devices against running listeners (`qilu monitor
    listen`) over the real protocols and TCP, tanks through QILU_MONITOR_MQTT_BROKER, with
    scripted incidents; registers the devices the store lacks first."""
    import uvloop
    from sqlalchemy.orm import Session

    from qilu.monitor import simulate

    settings = ctx.settings
    sims = simulate.fleet(vehicles=vehicles, sources=sources, air=air, hydro=hydro, tanks=tanks)
    _monitor_store(ctx)
    with Session(ctx.engine) as session, session.begin():
        added = simulate.register(session, sims)
    click.echo(f"设备 {len(sims)} 台（新登记 {added} 台）；场景：")
    if not no_incidents:
        for sim in sims:
            if sim.incident:
                click.echo(f"  {incident_after:.0f} 秒后 {sim.name}：{sim.incident}")
    ports = {
        "hj212": settings.monitor_hj212_port,
        "jt808": settings.monitor_jt808_port,
        "sl651": settings.monitor_sl651_port,
    }
    simulator = simulate.Simulator(
        sims,
        {k: v for k, v in ports.items() if v},
        host=host,
        mqtt_broker=settings.monitor_mqtt_broker,
        seconds=seconds,
        rate=rate,
        incident_after=None if no_incidents else incident_after,
    )
    started = time.monotonic()
    try:
        stats = uvloop.run(simulator.run())
    except KeyboardInterrupt:
        stats = simulator.stats
    elapsed = time.monotonic() - started
    sent = sum(stats.sent.values())
    click.echo(
        f"发送 {sent} 帧（{sent / elapsed:.0f} 帧/秒），应答 {stats.answered}，"
        f"未应答 {stats.unanswered}，连接失败 {stats.failed_connections}；"
        f"应答时延 p50 {stats.p(0.5) * 1000:.0f} ms，p95 {stats.p(0.95) * 1000:.0f} ms"
    )


@monitor.command("silence")
@click.option("--protocol", type=click.Choice(["hj212", "jt808", "sl651", "mqtt"]))
@click.option("--code", help="The device's code (with --protocol).")
@click.option("--division", help="Instead of a device: every device of this division.")
@click.option("--rule", default=None, help="Only this rule (default: every rule).")
@click.option("--hours", type=click.FloatRange(0.01, 720), required=True)
@click.option("--reason", required=True, help="Why, e.g. 检修 or 标定.")
@pass_context
def monitor_silence(
    ctx: CliContext,
    protocol: str | None,
    code: str | None,
    division: str | None,
    rule: str | None,
    hours: float,
    reason: str,
) -> None:
    """A maintenance window from now: no alarm opens for the device (or division) meanwhile."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from qilu.errors import QiluError
    from qilu.monitor import silences
    from qilu.monitor.models import Device

    with Session(ctx.engine) as session, session.begin():
        device = None
        if code is not None:
            key = code.lstrip("0") if protocol == "jt808" else code
            device = session.scalars(
                select(Device).where(Device.protocol == protocol, Device.code == key)
            ).first()
            if device is None:
                raise QiluError(
                    "silence.device", "没有这台设备（--protocol 和 --code）", field="code"
                )
        now = datetime.now(UTC)
        silence = silences.add(
            session, device=device, division_code=division, rule_code=rule, starts_at=now,
            ends_at=now + timedelta(hours=hours), reason=reason,
        )  # fmt: skip
        click.echo(f"已设置维护时段 {silence.id}：至 {silence.ends_at.isoformat()}")


@monitor.group("devices")
def monitor_devices() -> None:
    """Devices allowed to report."""


@monitor_devices.command("add")
@click.option("--protocol", type=click.Choice(["hj212", "jt808", "sl651", "mqtt"]), required=True)
@click.option("--code", required=True, help="MN, terminal number or station address.")
@click.option(
    "--kind",
    type=click.Choice(["pollution_source", "air_station", "vehicle", "hydro_station", "tank"]),
    required=True,
)
@click.option("--name", required=True)
@click.option("--division", required=True, help="Shandong division code (6 digits).")
@click.option("--interval", default=60, show_default=True, help="Seconds between reports.")
@click.option("--owner", default=None, help="The owner enterprise's USCC.")
@click.option("--lat", type=float, default=None)
@click.option("--lng", type=float, default=None)
@click.option(
    "--route",
    default=None,
    help="A vehicle's approved route: lat,lng;lat,lng;… (at least two points, WGS-84).",
)
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    help="The device's own levels for a rule, e.g. RIVER-LEVEL:yellow=28.5,red=30.5 "
    "(警戒 and 保证 water levels); repeatable.",
)
@pass_context
def monitor_devices_add(
    ctx: CliContext,
    protocol: str,
    code: str,
    kind: str,
    name: str,
    division: str,
    interval: int,
    owner: str | None,
    lat: float | None,
    lng: float | None,
    route: str | None,
    thresholds: tuple[str, ...],
) -> None:
    """Register a device; what it sent before, held aside, is stored as its readings."""
    from sqlalchemy.orm import Session

    from qilu.monitor import devices

    try:
        points = (
            [(float(a), float(b)) for a, b in (p.split(",") for p in route.split(";"))]
            if route
            else None
        )
    except ValueError:
        raise click.BadParameter("写作 纬度,经度;纬度,经度", param_hint="--route") from None
    levels: dict[str, dict[str, float]] = {}
    for given in thresholds:
        rule, _, pairs = given.partition(":")
        try:
            levels[rule] = {c: float(v) for c, v in (p.split("=") for p in pairs.split(","))}
        except ValueError:
            raise click.BadParameter(
                "写作 规则编码:yellow=28.5,red=30.5", param_hint="--threshold"
            ) from None
    spec = devices.DeviceSpec(
        protocol, code, kind, name, division, interval, owner, lat, lng,
        route=points, thresholds=levels or None,
    )  # fmt: skip
    with Session(ctx.engine) as session, session.begin():
        device = devices.register(session, spec)
        click.echo(f"已登记设备 {device.id}：{device.name}（{protocol} {device.code}）")


def _base_url(settings: Settings, host: str | None, port: int | None) -> str:
    return f"http://{host or settings.host}:{port or settings.port}"


def _serve(settings: Settings, host: str | None, port: int | None, workers: int = 1) -> None:
    import uvicorn

    # The app (in each worker) reads its settings from the environment: the address given on
    # the command line is where it is reached, and so its default issuer (QILU_PUBLIC_URL).
    if host:
        os.environ["QILU_HOST"] = host
    if port:
        os.environ["QILU_PORT"] = str(port)
    uvicorn.run(
        "qilu.web:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        # Live walls hold server-sent event streams: a restart waits this long for them, not
        # until each ends by itself.
        timeout_graceful_shutdown=10,
    )


class _RichProgress:
    """Seed progress on the terminal: one bar per stage."""

    def __init__(self, progress: Progress):
        self._progress = progress
        self._tasks: dict[str, Any] = {}

    def start(self, stage: str, total: int) -> None:
        self._tasks[stage] = self._progress.add_task(stage, total=total)

    def advance(self, stage: str, amount: int) -> None:
        self._progress.advance(self._tasks[stage], amount)


@contextmanager
def _progress() -> Iterator[_RichProgress]:
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        yield _RichProgress(progress)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure is one line saying what to do, never a traceback."""
    try:
        context = CliContext(Settings())
    except ValidationError as error:
        problem = error.errors()[0]
        name = "QILU_" + "_".join(str(part) for part in problem["loc"]).upper()
        _fail(f"环境变量 {name} 无效：{problem['msg']}")
    try:
        cli.main(args=argv, prog_name="qilu", standalone_mode=False, obj=context)
    except click.exceptions.Abort:
        err.print("已中止", style="red")
        sys.exit(130)
    except click.ClickException as error:
        _fail(f"{error.format_message()}（qilu --help 查看用法）", error.exit_code)
    except QiluError as error:
        _fail(error.message)
    except DBAPIError as error:
        _fail(describe_database_error(context.engine, error))
    except Exception as error:  # a bug: say so in one line; the traceback is for debug level
        if context.settings.log_level == "debug":
            raise
        _fail(f"内部错误 {type(error).__name__}: {error}（设置 QILU_LOG_LEVEL=debug 查看详情）", 70)


def _fail(message: str, exit_code: int = 1) -> NoReturn:
    err.print(f"错误：{message}", style="red", markup=False, highlight=False, soft_wrap=True)
    sys.exit(exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
