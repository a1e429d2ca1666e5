"""The `registry` command. Prints no personal identifier, ever."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection

from publishing.sync.cli import sync_cli
from registry.clients.services import ROLES, create_client, list_clients, revoke_client
from registry.clirun import CLI_ACTOR, in_read_transaction, in_write_transaction, run_with_services
from registry.courts.services import add_court, add_key, list_courts, revoke_key
from registry.identity.crypto import SecretsFile, new_key_id
from registry.listings.ingest import worker_count
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow


def _settings() -> Settings:
    return Settings()


@click.group()
def main() -> None:
    """The defaulter credit registry."""
    logging.basicConfig(level=_settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# ---- database ----


@main.group()
def db() -> None:
    """Schema migrations."""


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config(str(Path(__file__).resolve().parent.parent / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    return config


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from alembic import command

    command.upgrade(alembic_config(_settings().database_url), revision)
    click.echo(f"database at {revision}")


@db.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree (autogenerate drift check)."""
    from alembic import command

    command.check(alembic_config(_settings().database_url))
    click.echo("no drift")


# ---- running ----


@main.command()
@click.option("--host", default=None, help="Default REGISTRY_HOST.")
@click.option("--port", default=None, type=int, help="Default REGISTRY_PORT.")
@click.option(
    "--scheduler/--no-scheduler", default=None, help="Run background jobs here (default REGISTRY_SCHEDULER)."
)
def serve(host: str | None, port: int | None, scheduler: bool | None) -> None:
    """Serve the HTTP API (and, by default, the background jobs) in this process."""
    import uvicorn

    from registry.app import create_app

    settings = _settings()
    host, port = host or settings.host, port or settings.port
    click.echo(f"registry listening on http://{host}:{port}  (API schema: http://{host}:{port}/schema)")
    uvicorn.run(
        create_app(settings, run_scheduler=scheduler),
        host=host,
        port=port,
        access_log=False,
        log_level=settings.log_level.lower(),
    )


@main.command()
def worker() -> None:
    """Run the background jobs alone (start the web with --no-scheduler)."""
    from registry.scheduler import build_scheduler
    from search.runtime import add_search_jobs, create_search

    async def work(services: Services) -> None:
        scheduler = build_scheduler(services)
        search = create_search(services)
        add_search_jobs(scheduler, services, search)
        scheduler.start()
        click.echo("worker running background jobs; Ctrl-C stops it")
        try:
            await asyncio.Event().wait()
        finally:
            scheduler.shutdown(wait=False)
            search.close()

    run_with_services(work)


@main.command()
def expire() -> None:
    """Expire every fixed-term listing whose term has ended, now."""
    from registry.scheduler import expire_fixed_terms

    click.echo(f"expired {run_with_services(expire_fixed_terms)}")


# ---- bank checks ----


@main.command("check")
@click.argument("identifier")
@click.option("--name", default=None, help="The name the borrower gave; a mismatch is flagged.")
@click.option(
    "--credit-code", "organization", is_flag=True, help="IDENTIFIER is a unified social credit code."
)
@click.option("--purpose", default="credit_review", show_default=True, help="Why the operator checks.")
@click.option("--reference", default="operator", show_default=True, help="Recorded in the log and receipt.")
def check_command(
    identifier: str, name: str | None, organization: bool, purpose: str, reference: str
) -> None:
    """Check one subject as the bank API would (ID number by default); JSON with a signed receipt.
    Logged in the query log as the operator, outside any bank's quota."""
    import msgspec

    from registry.checks.schemas import CheckRequest, CheckSubject
    from registry.checks.services import CheckOutcome, answer, decode_request, record, run_check
    from registry.checks.stores import CoreStore

    subject = (
        CheckSubject(credit_code=identifier, name=name)
        if organization
        else CheckSubject(id_number=identifier, name=name)
    )
    body = msgspec.json.encode(CheckRequest(subjects=[subject], purpose=purpose, reference=reference))

    async def work(services: Services) -> bytes:
        request = decode_request(body, 1)

        def check(sync: Connection) -> CheckOutcome:
            store = CoreStore(sync)
            outcome = run_check(
                store,
                client_id=CLI_ACTOR,
                request=request,
                blind_index=services.secrets.blind_index,
                now=utcnow(),
            )
            record(store, outcome, quota=None)
            return outcome

        async with services.db.writer.begin() as conn:
            outcome = await conn.run_sync(check)
        return msgspec.json.encode(answer(outcome, services.checks.receipts))

    click.echo(run_with_services(work).decode())


# ---- public search ----


@main.group()
def search() -> None:
    """The public search index (REGISTRY_SEARCH_BACKEND)."""


@search.command("reindex")
def search_reindex() -> None:
    """Rebuild the index from every active listing; the old one serves until the new one is in."""
    from search.maintenance import reindex_now

    click.echo(json.dumps(reindex_now(_settings())))


@search.command("reconcile")
@click.option("--deep", is_flag=True, help="Rebuild and compare every document whole (embedded; slow).")
def search_reconcile(deep: bool) -> None:
    """Compare the index with the registry, repair any drift, print the counts (JSON)."""
    from search.maintenance import reconcile_now

    click.echo(json.dumps(reconcile_now(_settings(), deep=deep)))


# ---- courts and keys ----


@main.group()
def court() -> None:
    """Courts and their signing keys."""


@court.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--province", default=None, help="Two-digit province code; derived from CODE by default.")
def court_add(code: str, name: str, province: str | None) -> None:
    """Register a court, e.g. `registry court add 京0105 北京市朝阳区人民法院`."""
    click.echo(
        in_write_transaction(lambda c: add_court(c, code, name, province, actor=CLI_ACTOR, now=utcnow()))
    )


@court.command("list")
def court_list() -> None:
    click.echo(json.dumps(in_read_transaction(list_courts), ensure_ascii=False, indent=2))


@court.group("key")
def court_key() -> None:
    """Court signing keys."""


def _load_public_key(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(raw)
        if not isinstance(key, Ed25519PublicKey):
            raise click.ClickException("the PEM file does not hold an Ed25519 public key")
        return key.public_bytes_raw()
    text = raw.strip()
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4)) if len(text) != 32 else text


@court_key.command("add")
@click.argument("court_code")
@click.option(
    "--public-key",
    "public_key_path",
    type=click.Path(exists=True, path_type=Path),
    help="PEM, or raw 32 bytes, or base64url of them.",
)
@click.option(
    "--generate",
    "private_key_out",
    type=click.Path(path_type=Path),
    help="Generate a key pair; write the private key (PEM, 0600) to this file.",
)
@click.option("--valid-until", type=click.DateTime(), default=None)
def court_key_add(
    court_code: str, public_key_path: Path | None, private_key_out: Path | None, valid_until: datetime | None
) -> None:
    """Register a public key for COURT_CODE. Prints the new key id alone on its last line."""
    if (public_key_path is None) == (private_key_out is None):
        raise click.UsageError("give exactly one of --public-key FILE or --generate FILE")
    if private_key_out is not None:
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        private_key_out.touch(mode=0o600, exist_ok=False)
        private_key_out.write_bytes(pem)
        public = private.public_key().public_bytes_raw()
    else:
        assert public_key_path is not None
        public = _load_public_key(public_key_path)
    now = utcnow()
    until = valid_until.astimezone() if valid_until else None
    click.echo(
        in_write_transaction(
            lambda c: add_key(
                c, court_code, public, valid_from=now, valid_until=until, actor=CLI_ACTOR, now=now
            )
        )
    )


@court_key.command("revoke")
@click.argument("key_id")
@click.option("--reason", required=True)
def court_key_revoke(key_id: str, reason: str) -> None:
    """Revoke a key: listings signed with it are refused from now on."""
    in_write_transaction(lambda c: revoke_key(c, key_id, reason, actor=CLI_ACTOR, now=utcnow()))
    click.echo(f"revoked {key_id}")


# ---- API clients ----


@main.group()
def client() -> None:
    """API clients and their keys."""


@client.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--court", "court_code", default=None, help="The court a `court` client is bound to.")
def client_create(name: str, role: str, court_code: str | None) -> None:
    """Create a client. Prints its API key once, alone on the last line."""
    client_id, api_key = in_write_transaction(
        lambda c: create_client(c, name, role, court_code, actor=CLI_ACTOR, now=utcnow())
    )
    click.echo(f"client {client_id} ({role}); its API key, shown only now:", err=True)
    click.echo(api_key)


@client.command("revoke")
@click.argument("client_id")
def client_revoke(client_id: str) -> None:
    in_write_transaction(lambda c: revoke_client(c, client_id, actor=CLI_ACTOR, now=utcnow()))
    click.echo(f"revoked {client_id}")


@client.command("list")
def client_list() -> None:
    click.echo(json.dumps(in_read_transaction(list_clients), ensure_ascii=False, indent=2))


# ---- data ----


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workers", type=int, default=0, help="Preparing processes; 0 = one per core.")
@click.option("--chunk-size", type=int, default=1000, show_default=True)
def import_command(path: Path, workers: int, chunk_size: int) -> None:
    """Import signed listing envelopes, one JSON object per line."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from registry.listings.importer import import_file

    total = sum(1 for line in path.open("rb") if line.strip())

    async def work(services: Services) -> dict[str, Any]:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        ) as progress:
            task = progress.add_task("importing", total=total)
            report = await import_file(
                services,
                path,
                workers=worker_count(workers or services.settings.ingest_workers),
                chunk_size=chunk_size,
                on_progress=lambda n: progress.advance(task, n),
            )
        return report.as_dict()

    result = run_with_services(work)
    click.echo(json.dumps(result, ensure_ascii=False))
    if result["rejected"]:
        sys.exit(1)


@main.command()
@click.option("--listings", "count", type=int, default=2000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
def demo(count: int, seed: int) -> None:
    """Demo courts with their own keys, and COUNT realistic signed listings."""
    from registry.demo.runner import load_demo

    summary = run_with_services(lambda services: load_demo(services, count, seed))
    click.echo(json.dumps(summary, ensure_ascii=False))


# ---- integrity ----


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
def audit_verify() -> None:
    """Re-check the hash chain and every court signature; name the first bad record."""
    from registry.eventlog.audit import audit as run_audit

    async def work(services: Services) -> Any:
        async with services.db.reader.connect() as conn:
            return await conn.run_sync(run_audit, services.secrets.keyring)

    report = run_with_services(work)
    summary = f"{report.events_checked} events, {report.signatures_checked} signatures checked"
    if report.ok:
        click.echo(f"audit ok: {summary}")
        return
    click.echo(f"audit FAILED at {report.first_bad} ({summary} before it)", err=True)
    sys.exit(1)


# ---- feeds, exports, transparency log (issue 6) ----


@main.group()
def feeds() -> None:
    """Publication feeds."""


@feeds.command("sync")
def feeds_sync() -> None:
    """Bring the feeds' table up to the event log now (the scheduler does it every few seconds)."""
    from publishing.feeds.jobs import follow_publications

    click.echo(f"read {run_with_services(follow_publications)} events")


@main.group()
def export() -> None:
    """Signed bulk exports."""


@export.command("run")
@click.option(
    "--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="China date; default today."
)
def export_run(day: datetime | None) -> None:
    """Write the export of DATE (full public list now + that day's changes), sign it, prune old ones."""
    from publishing.exports.jobs import export_now
    from registry.listings.prepare import CHINA_TIME

    chosen = day.date() if day is not None else utcnow().astimezone(CHINA_TIME).date()

    async def work(services: Services) -> dict[str, Any]:
        return await asyncio.to_thread(export_now, services, chosen)

    click.echo(json.dumps(run_with_services(work), indent=2))


@main.group("log")
def log_group() -> None:
    """The transparency log (RFC 6962 Merkle tree of listing events)."""


@log_group.command("checkpoint")
def log_checkpoint() -> None:
    """Log every pending listing event and sign a checkpoint if the tree grew. A large
    backlog (a first checkpoint over an existing registry) is computed by one process per core
    (REGISTRY_INGEST_WORKERS)."""
    from registry.db import create_sync_engine
    from registry.translog.catchup import catch_up
    from registry.translog.jobs import advance_log

    settings = _settings()
    engine = create_sync_engine(settings.database_url)
    try:
        catch_up(engine, settings.database_url, worker_count(settings.ingest_workers))
    finally:
        engine.dispose()
    size = run_with_services(advance_log)
    click.echo("no new events" if size is None else f"checkpoint at tree size {size}")


@log_group.command("verify")
@click.option("--url", default=None, help="Check a running registry over HTTP, as an outsider would.")
@click.option(
    "--known",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --url: the last checkpoint you verified (kept up to date here); the log must extend it.",
)
def log_verify(url: str | None, known: Path | None) -> None:
    """Check the checkpoint chain: signatures, consistency, and (from the database) every leaf."""
    from registry.translog.verify import verify_database, verify_remote

    if url is not None:
        report = verify_remote(url.rstrip("/"), known)
    else:

        async def work(services: Services) -> Any:
            signer = services.signer
            keys = {kid: private.public_key() for kid, private in signer.keys.items()}
            async with services.db.reader.connect() as conn:
                return await conn.run_sync(verify_database, keys)

        report = run_with_services(work)
    click.echo(json.dumps(report.as_dict(), indent=2))
    if not report.ok:
        sys.exit(1)


@main.group()
def keys() -> None:
    """Data encryption keys and the registry's own signing keys."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Make a new data key active (secrets-file set-ups) and re-encrypt every ciphertext under it.

    With REGISTRY_DATA_KEYS, add the new key there and point REGISTRY_DATA_KEY_ID at it first;
    this then re-encrypts everything still under older keys.
    """
    from registry.eventlog.services import EventDraft, append_events
    from registry.identity.rotation import reencrypt_everything

    settings = _settings()
    if not settings.data_keys:
        secrets_file = SecretsFile(settings.secrets_file)
        current, _active, blind = secrets_file.load()
        fresh = new_key_id()
        secrets_file.save(current | {fresh: AESGCM.generate_key(bit_length=256)}, fresh, blind)

    async def work(services: Services) -> int:
        keyring = services.secrets.keyring
        total = await reencrypt_everything(services.db, keyring)
        event = EventDraft(
            "keys.rotated", CLI_ACTOR, data={"active_key_id": keyring.active_key_id, "rewritten": total}
        )
        async with services.db.writer.begin() as conn:
            await conn.run_sync(lambda c: append_events(c, [event], utcnow()))
        return total

    rewritten = run_with_services(work)
    click.echo(f"re-encrypted {rewritten} values; active data key is now the newest")


@keys.command("rotate-signing")
def keys_rotate_signing() -> None:
    """Make a new registry signing key active; older ones stay published for verification.

    With REGISTRY_SIGNING_KEYS, put the new key first there instead.
    """
    from registry.identity.registry_key import rotate_signing_key

    settings = _settings()
    if settings.signing_keys:
        raise click.ClickException("REGISTRY_SIGNING_KEYS is set: put the new key first there")
    click.echo(rotate_signing_key(settings.signing_key_file))


# ---- agency linkage sync (publishing/sync) ----

main.add_command(sync_cli, name="sync")


@main.command()
@click.argument(
    "what",
    type=click.Choice(["ingest", "sync", "checks", "search", "feeds", "export", "checkpoint"]),
    default="ingest",
)
@click.option("--listings", "count", type=int, default=100_000, show_default=True)
@click.option("--batch-size", type=int, default=10_000, show_default=True)
@click.option("--workers", type=int, default=0, help="Preparing processes; 0 = one per core.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Also write the JSON here.")
@click.option(
    "--database-url", default=None, help="PostgreSQL server to make scratch databases on (default: SQLite)."
)
@click.option("--removals", type=int, default=200, show_default=True, help="sync: removals timed one by one.")
@click.option(
    "--dataset",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="search/feeds/export/checkpoint on SQLite: keep the built database here and reuse it next time.",
)
def bench(
    what: str,
    count: int,
    batch_size: int,
    workers: int,
    output: Path | None,
    database_url: str | None,
    removals: int,
    dataset: Path | None,
) -> None:
    """Measure on a scratch database, JSON out: signed ingest (batch endpoint and `registry
    import`); agency sync (`sync`: fan-out to three push receivers, removal-to-acknowledgement
    latency); the bank check (`checks`: batch-1000 latency, single checks against a bare
    Litestar endpoint); public search (`search`); feeds (request latency), export (time, peak
    memory), checkpoint (time, proof latency)."""
    from registry.bench import run_ingest_bench
    from registry.checks.bench import run_checks_bench

    if what == "sync":
        from publishing.sync.bench import run_sync_bench

        result = run_sync_bench(count=count, removals=removals, database_url=database_url)
    elif what == "checks":
        result = run_checks_bench(count=count, workers=workers, database_url=database_url)
    elif what == "search":
        from search.bench import run_search_bench

        result = run_search_bench(count=count, database_url=database_url, dataset=dataset)
    elif what in ("feeds", "export", "checkpoint"):
        from publishing.bench import run_publishing_bench

        result = run_publishing_bench(what, count=count, database_url=database_url, dataset=dataset)
    else:
        result = run_ingest_bench(
            count=count, batch_size=batch_size, workers=workers, database_url=database_url
        )
    text = json.dumps(result, indent=2)
    if output is not None:
        output.write_text(text)
    click.echo(text)
