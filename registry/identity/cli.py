"""`registry keys ...`: data encryption keys and the registry's own signing keys."""

from __future__ import annotations

import click
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection

from registry.clirun import CLI_ACTOR, run_with_services
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
    from registry.db import create_sync_engine
    from registry.identity.keystore import KeyConfigError, KeysUnavailable, check_keys

    settings = Settings()
    engine = create_sync_engine(settings.database.url)
    try:
        with engine.begin() as conn:
            report = check_keys(conn, settings, generate=False)
    except (KeysUnavailable, KeyConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    if not report.needed:
        click.echo("empty database: the first start generates the keys it lacks")
        return
    for kid, kind in sorted(report.needed.items(), key=lambda item: (item[1], item[0])):
        click.echo(f"{kind:12} {kid}  held")
    click.echo("keys ok: every key the database needs is held")


@keys.command("rotate")
def keys_rotate() -> None:
    """Make a new data key active (secrets-file set-ups) and re-encrypt every ciphertext under it.

    With REGISTRY_DATA_KEYS, add the new key there and point REGISTRY_DATA_KEY_ID at it first;
    this then re-encrypts everything still under older keys. The service keeps answering
    meanwhile. Then `registry keys retire OLD_ID` drops the old key.
    """
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


@keys.command("retire")
@click.argument("key_id")
def keys_retire(key_id: str) -> None:
    """Retire a data key once nothing is encrypted under it (refused while anything is, or
    while it is the active key). The database stops requiring it at start; in secrets-file
    set-ups it is removed from the file, with REGISTRY_DATA_KEYS remove it there afterwards."""
    from registry.eventlog.services import EventDraft, append_events
    from registry.identity.rotation import StillInUse, retire_data_key

    settings = Settings()

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


@keys.command("rotate-signing")
def keys_rotate_signing() -> None:
    """Make a new registry signing key active; older ones stay published for verification.

    With REGISTRY_SIGNING_KEYS, put the new key first there instead.
    """
    from registry.identity.registry_key import rotate_signing_key

    settings = Settings()
    if settings.keys.signing_keys:
        raise click.ClickException("REGISTRY_SIGNING_KEYS is set: put the new key first there")
    click.echo(rotate_signing_key(settings.keys.signing_key_file))
