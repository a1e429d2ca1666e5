"""`registry keys ...`: data encryption keys and the registry's own signing keys."""

from __future__ import annotations

import secrets

import click
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection

from registry.clirun import CLI_ACTOR, operator_warning, run_with_services
from registry.eventlog.types import EventType
from registry.identity.crypto import SecretsFile, new_key_id
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow


@click.group()
def keys() -> None:
    """Data encryption keys and the registry's own signing keys."""


@keys.command("check")
def keys_check() -> None:
    """Compare the keys this configuration holds with the key ids the database needs; exit
    non-zero, naming the missing ids, when the service would refuse to start. Generates
    nothing, not even for an empty database."""
    from registry.courts.services import unusable_court_keys
    from registry.db import create_sync_engine
    from registry.identity.keystore import KeyConfigError, KeysUnavailable, check_keys
    from registry.identity.rotation import unrecoverable_watch_subjects

    settings = Settings()
    engine = create_sync_engine(settings.database.url)
    try:
        with engine.begin() as conn:
            report = check_keys(conn, settings, generate=False)
            legacy = unrecoverable_watch_subjects(conn)
            unusable = unusable_court_keys(conn)
    except (KeysUnavailable, KeyConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    if not report.needed:
        click.echo("empty database: the first start generates the keys it lacks")
        return
    states = _blind_index_states(settings)
    for kid, kind in sorted(report.needed.items(), key=lambda item: (item[1], item[0])):
        click.echo(f"{kind:12} {kid}  held{states.get(kid, '')}")
    for kid, state in states.items():
        if kid not in report.needed:
            click.echo(f"{'blind_index':12} {kid}  held{state}")
    if legacy:
        click.echo(
            f"{legacy} watched subjects were added before their identifier was kept: a blind-index "
            "key rotation cannot recompute them (their banks can add them again)"
        )
    for key_id, court_code, why in unusable:
        click.echo(
            f"court key {key_id} of {court_code} verifies no signature ({why}): register a new key "
            f"for the court, then `registry court key revoke {key_id}`"
        )
    click.echo("keys ok: every key the database needs is held")


def _blind_index_states(settings: Settings) -> dict[str, str]:
    """Which held blind-index key is active and which is retiring (a rotation under way)."""
    from registry.identity.crypto import load_secrets_if_present
    from registry.identity.keystore import blind_index_key_id

    secrets_ = load_secrets_if_present(settings)
    if secrets_ is None or secrets_.previous_blind_index_key is None:
        return {}
    return {
        blind_index_key_id(secrets_.blind_index_key): " (active)",
        blind_index_key_id(secrets_.previous_blind_index_key): (
            " (retiring: `registry keys rotate --blind-index`, then `registry keys retire` it)"
        ),
    }


@keys.command("rotate")
@click.option(
    "--blind-index",
    is_flag=True,
    help="Rotate the blind-index key instead: recompute every stored index under the active key.",
)
def keys_rotate(blind_index: bool) -> None:
    """Make a new data key active (secrets-file set-ups) and re-encrypt every ciphertext under it.

    With REGISTRY_DATA_KEYS, add the new key there and point REGISTRY_DATA_KEY_ID at it first;
    this then re-encrypts everything still under older keys. The service keeps answering
    meanwhile. Then `registry keys retire OLD_ID` drops the old key.

    With --blind-index: the same for the blind-index key (REGISTRY_BLIND_INDEX_KEY="new,old"
    first; a secrets-file set-up gets a new key here). Resumable; reports what it could not
    recompute. Then `registry keys retire bk-…` drops the old one.
    """
    if blind_index:
        _rotate_blind_index()
        return
    from registry.eventlog.services import EventDraft, append_events
    from registry.identity.rotation import ciphertext_count, reencrypt_everything
    from registry.progress import progress_bar

    settings = Settings()
    if not settings.keys.data_keys:
        secrets_file = SecretsFile(settings.keys.secrets_file)
        stored = secrets_file.read()
        if stored is None:
            raise click.ClickException(f"the secrets file {secrets_file.path} does not exist")
        current, _active, blind, previous = stored
        fresh = new_key_id()
        secrets_file.save(current | {fresh: AESGCM.generate_key(bit_length=256)}, fresh, blind, previous)

    async def work(services: Services) -> int:
        keyring = services.secrets.keyring
        total = await services.db.read(ciphertext_count)
        with progress_bar("re-encrypting", total):
            rewritten = await reencrypt_everything(services.db, keyring)
        event = EventDraft(
            EventType.KEYS_ROTATED,
            CLI_ACTOR,
            data={"active_key_id": keyring.active_key_id, "rewritten": rewritten},
        )
        await services.db.write(append_events, [event], utcnow())
        return rewritten

    rewritten = run_with_services(work)
    click.echo(f"re-encrypted {rewritten} values; active data key is now the newest")


def _rotate_blind_index() -> None:
    from registry.eventlog.services import EventDraft, append_events
    from registry.identity.keystore import blind_index_key_id
    from registry.identity.rotation import BlindRotation, blind_row_count, reindex_everything
    from registry.progress import progress_bar

    settings = Settings()
    if not settings.keys.data_keys:
        secrets_file = SecretsFile(settings.keys.secrets_file)
        stored = secrets_file.read()
        if stored is None:
            raise click.ClickException(f"the secrets file {secrets_file.path} does not exist")
        current, active, blind, previous = stored
        if previous is None:
            # A new key in front; the old one stays for lookups until `keys retire`. With a
            # retiring key already there, an interrupted rotation resumes under the same key.
            secrets_file.save(current, active, secrets.token_bytes(32), blind)
    elif "," not in (settings.keys.blind_index_key or ""):
        operator_warning(
            "REGISTRY_BLIND_INDEX_KEY holds one key: indexes already under it are left alone "
            '(to rotate, set it to "new,old" in every process first)'
        )

    async def work(services: Services) -> tuple[str, BlindRotation]:
        keys = services.secrets
        total = await services.db.read(blind_row_count)
        with progress_bar("recomputing blind indexes", total):
            found = await reindex_everything(services.db, keys)
        active_id = blind_index_key_id(keys.blind_index_key)
        data = {
            "blind_index_key_id": active_id,
            "listings": found.listings,
            "watch_subjects": found.watch_subjects,
            "unrecoverable_watch_subjects": sum(found.unrecoverable.values()),
        }
        await services.db.write(
            append_events, [EventDraft(EventType.KEYS_ROTATED, CLI_ACTOR, data=data)], utcnow()
        )
        return active_id, found

    active_id, found = run_with_services(work)
    click.echo(
        f"recomputed {found.listings} listings and {found.watch_subjects} watched subjects "
        f"under the blind-index key {active_id}"
    )
    if found.unrecoverable:
        operator_warning(
            f"{sum(found.unrecoverable.values())} watched subjects were added before their identifier "
            "was kept and cannot be recomputed; until their banks add them again, the old key "
            "cannot be retired: "
            + ", ".join(f"{client}: {n}" for client, n in sorted(found.unrecoverable.items()))
        )


@keys.command("retire")
@click.argument("key_id")
def keys_retire(key_id: str) -> None:
    """Retire a data key once nothing is encrypted under it (refused while anything is, or
    while it is the active key). The database stops requiring it at start; in secrets-file
    set-ups it is removed from the file, with REGISTRY_DATA_KEYS remove it there afterwards.

    A blind-index key (`bk-…`, see `registry keys check`) is retired likewise once every
    stored index is under the active key (a full pass, counting only)."""
    from registry.eventlog.services import EventDraft, append_events
    from registry.identity.rotation import StillInUse, retire_data_key

    settings = Settings()
    if key_id.startswith("bk-"):
        _retire_blind_index(settings, key_id)
        return

    async def work(services: Services) -> None:
        keyring = services.secrets.keyring
        if key_id not in keyring.raw_keys():
            raise click.ClickException(f"{key_id} is not a data key of this configuration")
        now = utcnow()
        event = EventDraft(EventType.KEYS_ROTATED, CLI_ACTOR, data={"retired_key_id": key_id})

        def retire(conn: Connection) -> None:
            retire_data_key(conn, key_id, keyring.active_key_id, now)
            append_events(conn, [event], now)

        try:
            await services.db.write(retire)
        except StillInUse as exc:
            raise click.ClickException(str(exc)) from exc

    run_with_services(work)
    if settings.keys.data_keys:
        click.echo(f"retired {key_id}: now remove it from REGISTRY_DATA_KEYS in every process")
        return
    secrets_file = SecretsFile(settings.keys.secrets_file)
    stored = secrets_file.read()
    if stored is not None:
        current, active, blind, previous = stored
        secrets_file.save(
            {kid: key for kid, key in current.items() if kid != key_id}, active, blind, previous
        )
    click.echo(f"retired {key_id}: removed from {secrets_file.path}")


def _retire_blind_index(settings: Settings, key_id: str) -> None:
    from registry.eventlog.services import EventDraft, append_events
    from registry.identity.keystore import blind_index_key_id
    from registry.identity.rotation import (
        StillInUse,
        blind_row_count,
        reindex_everything,
        retire_blind_index_key,
    )
    from registry.progress import progress_bar

    async def work(services: Services) -> None:
        keys = services.secrets
        active_id = blind_index_key_id(keys.blind_index_key)
        held = [blind_index_key_id(key) for key in keys.blind_index_keys()]
        if key_id not in held:
            raise click.ClickException(f"{key_id} is not a blind-index key of this configuration")
        if key_id != active_id:
            total = await services.db.read(blind_row_count)
            with progress_bar("checking blind indexes", total):
                found = await reindex_everything(services.db, keys, dry=True)
            left = found.listings + found.watch_subjects + sum(found.unrecoverable.values())
            if left:
                raise click.ClickException(
                    f"{left} stored indexes are not under the active key {active_id} "
                    f"(listings: {found.listings}, watched subjects: {found.watch_subjects}, "
                    f"watched subjects that cannot be recomputed: {sum(found.unrecoverable.values())}): "
                    "run `registry keys rotate --blind-index` first"
                )
        now = utcnow()
        event = EventDraft(EventType.KEYS_ROTATED, CLI_ACTOR, data={"retired_key_id": key_id})

        def retire(conn: Connection) -> None:
            retire_blind_index_key(conn, key_id, active_id, now)
            append_events(conn, [event], now)

        try:
            await services.db.write(retire)
        except StillInUse as exc:
            raise click.ClickException(str(exc)) from exc

    run_with_services(work)
    if settings.keys.data_keys:
        click.echo(
            f"retired {key_id}: now keep only the active key in REGISTRY_BLIND_INDEX_KEY in every process"
        )
        return
    secrets_file = SecretsFile(settings.keys.secrets_file)
    stored = secrets_file.read()
    if stored is not None:
        current, active, blind, _previous = stored
        secrets_file.save(current, active, blind, None)
    click.echo(f"retired {key_id}: removed from {secrets_file.path}")


@keys.command("rotate-signing")
def keys_rotate_signing() -> None:
    """Make a new registry signing key active; older ones stay published for verification.

    A running service follows the signing key file: it publishes the new key at
    /.well-known/jwks.json and signs with it from its next request, without a restart.
    With REGISTRY_SIGNING_KEYS, put the new key first there instead (then restart).
    """
    from registry.identity.keystore import rotate_signing

    settings = Settings()
    if settings.keys.signing_keys:
        raise click.ClickException("REGISTRY_SIGNING_KEYS is set: put the new key first there")
    click.echo(rotate_signing(settings))
