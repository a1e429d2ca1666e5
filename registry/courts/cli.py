"""`registry court ...`: courts and their signing keys."""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.calendar import CHINA_TIME
from registry.clirun import CLI_ACTOR, in_read_transaction, in_write_transaction
from registry.courts.services import (
    add_court,
    add_key,
    check_key_validity,
    list_courts,
    revoke_key,
    set_superior,
)
from registry.timeutil import utcnow

# A date, or a date and time, with an optional UTC offset or Z; ASCII digits only (strptime
# and fromisoformat would read another script's digits).
_MOMENT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?",
    re.ASCII,
)


class ChinaMoment(click.ParamType[datetime]):
    """An instant: a date (its start) or a time without an offset is China time, the courts'
    clock, whatever the operator machine's zone (it was read in that zone: 2027-01-01 became
    2026-12-31T16:00Z under TZ=Asia/Shanghai and 2027-01-01T00:00Z under UTC); a time with
    `Z` or an offset is taken as given."""

    name = "date or time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = unicodedata.normalize("NFKC", str(value)).strip()
        try:
            if _MOMENT.fullmatch(text) is None:
                raise ValueError(text)
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(
                f"{value!r} is not a date or time: YYYY-MM-DD (China time), YYYY-MM-DDTHH:MM[:SS] "
                "(China time) or with Z or an offset (+08:00)",
                param,
                ctx,
            )
        return (moment if moment.tzinfo is not None else moment.replace(tzinfo=CHINA_TIME)).astimezone(UTC)


@click.group()
def court() -> None:
    """Courts and their signing keys."""


@court.command("add")
@click.argument("code")
@click.argument("name")
@click.option(
    "--province",
    default=None,
    help="Two-digit province code, CODE's own (京: 11); derived from CODE by default.",
)
@click.option(
    "--superior",
    default=None,
    help="The registered court one level up (reconsiderations go there), e.g. 京03 for 京0105.",
)
def court_add(code: str, name: str, province: str | None, superior: str | None) -> None:
    """Register a court, e.g. `registry court add 京0105 北京市朝阳区人民法院 --superior 京03`."""
    click.echo(
        in_write_transaction(
            lambda c: add_court(c, code, name, province, actor=CLI_ACTOR, now=utcnow(), superior=superior)
        )
    )


@court.command("superior")
@click.argument("code")
@click.argument("superior")
def court_superior(code: str, superior: str) -> None:
    """Set the court one level up of a registered court: `registry court superior 京0105 京03`."""
    in_write_transaction(lambda c: set_superior(c, code, superior, actor=CLI_ACTOR, now=utcnow()))
    click.echo(f"{code} -> {superior}")


@court.command("list")
def court_list() -> None:
    click.echo(json.dumps(in_read_transaction(list_courts), ensure_ascii=False, indent=2))


@court.group("key")
def court_key() -> None:
    """Court signing keys."""


def _load_public_key(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw.lstrip().startswith(b"-----BEGIN"):
        if b"PRIVATE KEY-----" in raw:
            # Never echoed, and never registered: a court's private key stays with the court.
            raise click.ClickException(f"{path} holds a private key: give the court's public key")
        try:
            key = serialization.load_pem_public_key(raw)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise click.ClickException(f"{path} is not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise click.ClickException("the PEM file does not hold an Ed25519 public key")
        return key.public_bytes_raw()
    text = raw.strip()
    if len(text) == 32:
        return text
    try:
        return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except ValueError as exc:  # binascii.Error
        raise click.ClickException(
            f"{path} holds no public key: PEM, raw 32 bytes or base64url of them"
        ) from exc


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
@click.option(
    "--valid-until",
    type=ChinaMoment(),
    default=None,
    help="When the key stops: YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] in China time, or with Z or an offset.",
)
def court_key_add(
    court_code: str, public_key_path: Path | None, private_key_out: Path | None, valid_until: datetime | None
) -> None:
    """Register a public key for COURT_CODE. Prints the new key id alone on its last line."""
    if (public_key_path is None) == (private_key_out is None):
        raise click.UsageError("give exactly one of --public-key FILE or --generate FILE")
    now = utcnow()
    until = valid_until
    check_key_validity(now, until)  # before a private key file is written
    if private_key_out is None:
        assert public_key_path is not None
        public = _load_public_key(public_key_path)
    else:
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = private.public_key().public_bytes_raw()
        private_key_out.touch(mode=0o600, exist_ok=False)  # never over another key
    try:
        if private_key_out is not None:
            # Written before the key is registered: a registered key whose private half was
            # lost (a full disk) would be a court's key no one holds.
            private_key_out.write_bytes(pem)
        key_id = in_write_transaction(
            lambda c: add_key(
                c, court_code, public, valid_from=now, valid_until=until, actor=CLI_ACTOR, now=now
            )
        )
    except BaseException:
        # Refused (an unknown court, a database out of reach, Ctrl-C): no key file is left behind,
        # and the same command can run again.
        if private_key_out is not None:
            private_key_out.unlink(missing_ok=True)
        raise
    click.echo(key_id)


@court_key.command("revoke")
@click.argument("key_id")
@click.option("--reason", required=True)
def court_key_revoke(key_id: str, reason: str) -> None:
    """Revoke a key: listings signed with it are refused from now on."""
    in_write_transaction(lambda c: revoke_key(c, key_id, reason, actor=CLI_ACTOR, now=utcnow()))
    click.echo(f"revoked {key_id}")
