"""The libpq options of a PostgreSQL REGISTRY_DATABASE_URL work on both engines: psycopg (the
synchronous one) reads the query as the operator wrote it, and the async engine's asyncpg is
given the same options under its own names. `?sslmode=disable` once reached asyncpg's
connect() as a keyword it does not take: every database request answered 500 (TypeError),
/readyz said the database was unavailable, `registry db upgrade` printed a traceback. An option
the service cannot honour on both engines is refused when the settings are read, one line.

The tests that need a PostgreSQL server run when REGISTRY_TEST_DATABASE_URL names one; the TLS
options are tested on both drivers against a small TLS server of the test's own.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from registry.clients.services import create_client
from registry.db import Database, asyncpg_arguments, create_sync_engine, sync_url
from registry.http.errors import unexpected_problem
from registry.problems import database_unavailable
from registry.settings import Settings, SettingsError, load_settings
from registry.timeutil import utcnow
from service.app import create_app
from tests.support.harness import cli_env, free_port, registry_bin, serve_app

PASSWORD = "hunter2-not-for-logs"
OPTIONS = "sslmode=disable&connect_timeout=5&application_name=registry-test"


def _with(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _async_read(url: str, sql: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        db = Database(url)
        try:
            return await db.read(lambda conn: [tuple(row) for row in conn.exec_driver_sql(sql)])
        finally:
            await db.dispose()

    return asyncio.run(run())


def _sync_read(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


# ---- the settings: kept as written, checked, translated ----


def test_libpq_options_are_kept_as_written_for_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    written = f"postgresql://registry:{PASSWORD}@db.internal:5432/registry?{OPTIONS}"
    monkeypatch.setenv("REGISTRY_DATABASE_URL", written)
    url = load_settings().database.url
    assert url == written.replace("postgresql://", "postgresql+asyncpg://")
    assert sync_url(url) == written.replace("postgresql://", "postgresql+psycopg://")


def test_asyncpg_is_given_the_same_options_under_its_own_names(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path in (ca, cert, key):
        path.write_text("-")
    url, arguments = asyncpg_arguments(
        f"postgresql+asyncpg://registry:{PASSWORD}@/registry?host=/run/postgresql&port=5433&{OPTIONS}"
        f"&sslmode=verify-full&sslrootcert={ca}&sslcert={cert}&sslkey={key}".replace("sslmode=disable&", "")
    )
    assert url.render_as_string(hide_password=False) == (
        f"postgresql+asyncpg://registry:{PASSWORD}@/registry?host=%2Frun%2Fpostgresql&port=5433"
    )
    dsn = arguments.pop("dsn")
    assert arguments == {
        "ssl": "verify-full",
        "timeout": 5,
        "server_settings": {"plan_cache_mode": "force_custom_plan", "application_name": "registry-test"},
    }
    # asyncpg reads libpq's certificate options from a DSN, as libpq does.
    assert sorted(dsn.partition("?")[2].split("&")) == sorted(
        f"{name}={str(path).replace('/', '%2F')}"
        for name, path in (("sslrootcert", ca), ("sslcert", cert), ("sslkey", key))
    )
    # libpq: 0 is no limit of its own, and less than 2 seconds is 2.
    assert "timeout" not in asyncpg_arguments("postgresql+asyncpg://h/db?connect_timeout=0")[1]
    assert asyncpg_arguments("postgresql+asyncpg://h/db?connect_timeout=1")[1]["timeout"] == 2
    assert asyncpg_arguments("postgresql+asyncpg://h/db")[1] == {
        "server_settings": {"plan_cache_mode": "force_custom_plan"}
    }


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("foo=1", "query option foo is not supported"),
        ("sslmode=disable&options=-c%20statement_timeout%3D5000", "query option options is not supported"),
        (f"password={PASSWORD}", "query option password is not supported"),
        (f"{PASSWORD}=1", "query option (unnamed) is not supported"),
        ("prepared_statement_cache_size=0", "query option prepared_statement_cache_size is not supported"),
        ("sslmode=on", "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full"),
        ("sslmode=disable&sslmode=require", "query option sslmode given more than once"),
        ("connect_timeout=five", "connect_timeout must be whole seconds"),
        ("connect_timeout=-1", "connect_timeout must be whole seconds"),
        ("sslmode=verify-full&sslrootcert=/nonexistent/root.crt", "sslrootcert names no readable file"),
    ],
)
def test_an_option_both_engines_cannot_honour_is_refused_in_one_line(
    query: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_DATABASE_URL", f"postgresql://registry:{PASSWORD}@db/registry?{query}")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    [line] = refused.value.lines
    assert line.startswith(f"REGISTRY_DATABASE_URL: {reason}"), line
    assert PASSWORD not in line


@pytest.mark.slow
def test_the_command_refuses_an_unknown_option_in_one_line(settings: Settings) -> None:
    env = cli_env(settings) | {"REGISTRY_DATABASE_URL": f"postgresql://registry:{PASSWORD}@db/registry?foo=1"}
    result = subprocess.run(
        [registry_bin(), "client", "list"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr + result.stdout
    [error] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error.startswith("Error: REGISTRY_DATABASE_URL: query option foo is not supported"), error


# ---- a real PostgreSQL server ----


@pytest.fixture
def postgres(settings: Settings, engine: sa.Engine) -> str:
    """The test database's URL, as the service holds it (postgresql+asyncpg://)."""
    if settings.database.is_sqlite:
        pytest.skip("needs PostgreSQL: set REGISTRY_TEST_DATABASE_URL")
    return settings.database.url


def _server_has_no_tls(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        if conn.exec_driver_sql("SHOW ssl").scalar() != "off":
            pytest.skip("the test server speaks TLS: sslmode=require would connect")


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_libpq_options_reach_the_server_through_both_engines(postgres: str, mode: str) -> None:
    url = _with(postgres, OPTIONS.replace("sslmode=disable", f"sslmode={mode}"))
    # What the server sees of each engine's own connection, in pg_stat_activity.
    sql = (
        "SELECT a.application_name, current_setting('plan_cache_mode'), s.ssl FROM pg_stat_activity a "
        "JOIN pg_stat_ssl s USING (pid) WHERE a.pid = pg_backend_pid()"
    )
    assert _async_read(url, sql) == [("registry-test", "force_custom_plan", False)]
    [(name, _plan, tls)] = _sync_read(url, sql)
    assert (name, tls) == ("registry-test", False)


def test_the_service_serves_with_libpq_options(postgres: str, settings: Settings, engine: sa.Engine) -> None:
    """Readiness, a public search and a bank check (the async engine and the synchronous one)
    answer; the server sees the service's connections under the application name."""
    with engine.begin() as conn:
        _, api_key = create_client(conn, "Bank of Test", "bank", None, actor="test", now=utcnow())
    app = create_app(settings.override(database={"url": _with(postgres, OPTIONS)}), run_scheduler=False)
    check = {
        "subjects": [{"id_number": "110105194912310038"}],
        "purpose": "loan_application",
        "reference": "r",
    }
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        ready = http.get("/readyz")
        search = http.get("/v1/public/defaulters", params={"q": "张伟"})
        checked = http.post("/v1/checks", json=check, headers={"Authorization": f"Bearer {api_key}"})
        courts = http.get("/v1/courts")
        with engine.connect() as conn:
            seen = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'registry-test' AND datname = current_database()"
            ).scalar_one()
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"] == "ok"
    assert search.status_code == 200, search.text
    assert checked.status_code == 200, checked.text
    assert courts.status_code == 200, courts.text
    assert seen >= 2


def test_sslmode_require_without_tls_on_the_server_is_the_database_unavailable(
    postgres: str, engine: sa.Engine
) -> None:
    """A connection failure on both engines, which a request answers with 503 (never a
    TypeError's 500); asyncpg's own refusal is a bare ConnectionError, wrapped here."""
    _server_has_no_tls(engine)
    url = _with(postgres, "sslmode=require&application_name=registry-test")
    for read in (_async_read, _sync_read):
        with pytest.raises(sa.exc.OperationalError) as failed:
            read(url, "SELECT 1")
        assert database_unavailable(failed.value)
        assert unexpected_problem(failed.value).status == 503


@pytest.mark.slow
def test_the_commands_run_with_libpq_options_and_name_a_tls_refusal_in_one_line(
    postgres: str, settings: Settings, engine: sa.Engine
) -> None:
    """`registry db upgrade` printed a traceback (TypeError) with ?sslmode=disable. A server
    that refuses TLS under sslmode=require stops every command, `serve` too, in one line."""
    written = os.environ["REGISTRY_TEST_DATABASE_URL"]

    def cli(*args: str, query: str) -> subprocess.CompletedProcess[str]:
        env = cli_env(settings) | {
            "REGISTRY_DATABASE_URL": _with(written, query),
            "REGISTRY_PORT": str(free_port()),
        }
        return subprocess.run(
            [registry_bin(), *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    upgraded = cli("db", "upgrade", query=OPTIONS)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database at head" in upgraded.stdout
    listed = cli("client", "list", query=OPTIONS)
    assert listed.returncode == 0, listed.stderr

    _server_has_no_tls(engine)
    for command in (("db", "upgrade"), ("client", "list"), ("serve", "--no-scheduler")):
        refused = cli(*command, query="sslmode=require")
        assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
        [error] = [line for line in refused.stderr.splitlines() if line.startswith("Error:")]
        assert error.startswith("Error: database error at "), error
        assert "SSL" in error, error


# ---- TLS: the certificate options, on both drivers ----


@dataclass
class TlsServer:
    """Answers PostgreSQL's SSLRequest with yes, completes a TLS handshake with its
    certificate (asking for the client's), then refuses the login: enough to see what
    each driver did with sslrootcert, sslcert and sslkey."""

    context: ssl.SSLContext
    port: int = field(default_factory=free_port)
    clients: list[str | None] = field(default_factory=list)  # each handshake's client CN

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            with sock:
                sock.settimeout(10)
                try:
                    self._one(sock)
                except (OSError, ValueError):
                    continue

    def _one(self, sock: socket.socket) -> None:
        while True:
            length, code = struct.unpack("!ii", sock.recv(8, socket.MSG_WAITALL))
            if code == 80877104:  # GSSENCRequest: no
                sock.sendall(b"N")
                continue
            assert (length, code) == (8, 80877103), "an SSLRequest"
            break
        sock.sendall(b"S")
        with self.context.wrap_socket(sock, server_side=True) as tls:
            peer = tls.getpeercert()
            subject = dict(pair[0] for pair in peer["subject"]) if peer else {}
            self.clients.append(subject.get("commonName"))
            (length,) = struct.unpack("!i", tls.recv(4))
            tls.recv(length - 4)  # the startup message
            fields = b"SFATAL\0VFATAL\0C28000\0Mrefused by the test's TLS server\0\0"
            tls.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)


def _certificate(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey] | None
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (issuer or (name, key))[0])]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign((issuer or (name, key))[1], hashes.SHA256())


def _write(path: Path, key: ec.EllipticCurvePrivateKey | None, cert: x509.Certificate | None) -> Path:
    if key is not None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        path.chmod(0o600)  # libpq refuses a key others may read
    else:
        assert cert is not None
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[TlsServer, dict[str, Path]]]:
    keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("ca", "other", "server", "client")}
    issuer = ("test ca", keys["ca"])
    files = {
        "ca": _write(tmp_path / "ca.pem", None, _certificate("test ca", keys["ca"], None)),
        "other_ca": _write(tmp_path / "other.pem", None, _certificate("other ca", keys["other"], None)),
        "server": _write(tmp_path / "server.pem", None, _certificate("server", keys["server"], issuer)),
        "server_key": _write(tmp_path / "server.key", keys["server"], None),
        "client": _write(
            tmp_path / "client.pem", None, _certificate("registry-client", keys["client"], issuer)
        ),
        "client_key": _write(tmp_path / "client.key", keys["client"], None),
    }
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files["server"], files["server_key"])
    context.load_verify_locations(files["ca"])
    context.verify_mode = ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["postgresql"])
    server = TlsServer(context)
    listener = socket.create_server(("127.0.0.1", server.port))
    thread = threading.Thread(target=server.serve, args=(listener,), daemon=True)
    thread.start()
    try:
        yield server, files
    finally:
        listener.close()
        thread.join(timeout=10)


def test_the_certificate_options_reach_both_drivers(tls: tuple[TlsServer, dict[str, Path]]) -> None:
    """verify-full with sslrootcert, sslcert and sslkey: each driver verifies the server's
    certificate against that root and presents the client certificate."""
    server, files = tls
    query = (
        f"sslmode=verify-full&sslrootcert={files['ca']}&sslcert={files['client']}"
        f"&sslkey={files['client_key']}&connect_timeout=5"
    )
    url = f"postgresql+asyncpg://registry@127.0.0.1:{server.port}/registry?{query}"
    for read in (_async_read, _sync_read):
        with pytest.raises(Exception, match="refused by the test's TLS server"):
            read(url, "SELECT 1")
    assert server.clients == ["registry-client", "registry-client"]


def test_a_server_certificate_another_root_signed_is_the_database_unavailable(
    tls: tuple[TlsServer, dict[str, Path]],
) -> None:
    """Not a bare ssl.SSLError out of asyncpg (a 500, a traceback): a connection failure."""
    server, files = tls
    url = (
        f"postgresql+asyncpg://registry@127.0.0.1:{server.port}/registry"
        f"?sslmode=verify-ca&sslrootcert={files['other_ca']}"
    )
    for read in (_async_read, _sync_read):
        with pytest.raises(sa.exc.OperationalError, match="certificate verify failed") as failed:
            read(url, "SELECT 1")
        assert database_unavailable(failed.value)
    assert server.clients == []
