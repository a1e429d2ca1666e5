"""`registry client rotate-key`: a lost or exposed API key is replaced without replacing the
client, whose id holds its subscriptions, unanswered notices, watchlist and query log."""

from __future__ import annotations

import sqlalchemy as sa

from registry.settings import Settings
from tests.support.harness import Registry, run_registry


def test_a_new_key_refuses_the_old_one_at_once_and_keeps_the_client_s_watchlist(
    registry: Registry, settings: Settings, engine: sa.Engine
) -> None:
    old_key = registry.client("bank")
    with registry.http(old_key) as http:
        added = http.post("/v1/watchlist/subjects", json={"subjects": [{"id_number": "11010519491231002X"}]})
        assert added.status_code == 200, added.text
    with engine.connect() as conn:
        client_id = conn.execute(sa.text("SELECT id FROM api_clients WHERE role = 'bank'")).scalar_one()
    rotated = run_registry(settings, "client", "rotate-key", client_id)
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.strip()
    assert new_key.startswith("rk_") and new_key != old_key
    assert new_key not in rotated.stderr  # the key alone on stdout, for a pipe into a file
    with registry.http(old_key) as http:
        assert http.get("/v1/watchlist").status_code == 401
    with registry.http(new_key) as http:
        assert http.get("/v1/watchlist").json()["subjects"] == 1  # the same client, its watchlist kept
    with engine.connect() as conn:
        logged = (
            conn.execute(sa.text("SELECT data FROM events WHERE type = 'client.key_rotated'")).scalars().all()
        )
    assert len(logged) == 1 and client_id in str(logged[0]) and "rk_" not in str(logged[0])


def test_a_revoked_or_unknown_client_gets_no_new_key(
    registry: Registry, settings: Settings, engine: sa.Engine
) -> None:
    registry.client("agency")
    with engine.connect() as conn:
        client_id = conn.execute(sa.text("SELECT id FROM api_clients WHERE role = 'agency'")).scalar_one()
    assert run_registry(settings, "client", "revoke", client_id).returncode == 0
    for target in (client_id, "cl_unknown"):
        refused = run_registry(settings, "client", "rotate-key", target)
        assert refused.returncode != 0 and "rk_" not in refused.stdout
        assert "client_not_found" in refused.stderr or "no active client" in refused.stderr
