"""Property-based fuzzing of the whole HTTP API against the live session server (schemathesis).

Schemathesis's own engine (what its command line runs) reads /schema/openapi.json and sends
every operation the document's examples, boundary and invalid values (its coverage phase)
and generated requests, valid and invalid, once with an admin API key and once with none.
No answer may be a server error, have a status the document does not declare for the
operation, or differ from the schema declared for that status. The database is emptied
after each run, as after any test.
"""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.engine import Status, events

from tests.conftest import Registry

CHECKS = ["not_a_server_error", "status_code_conformance", "response_schema_conformance"]
# Generated requests per operation and mode, beside the coverage phase's: about 20 s a run.
EXAMPLES = 25


def fuzz(server_url: str, headers: dict[str, str]) -> list[str]:
    """Run every phase over every operation; returns what failed, with a request to replay it."""
    schema = schemathesis.openapi.from_url(f"{server_url}/schema/openapi.json")
    schema.config.update(base_url=server_url, headers=headers)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES,
        # Reproducible in CI; no shrinking, which can take minutes per failure.
        deterministic=True,
        no_shrink=True,
        database="none",
    )
    schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
    schema.config.checks.update(included_check_names=CHECKS)
    failures: list[str] = []
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for checks in event.recorder.checks.values():
                failures.extend(
                    f"{event.label}: {check.name}: {check.failure_info.failure.title}\n"
                    f"{check.failure_info.code_sample}"
                    for check in checks
                    if check.status == Status.FAILURE and check.failure_info is not None
                )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"schemathesis could not run: {event}")
    return sorted(set(failures))


@pytest.mark.slow
def test_the_api_answers_an_admin_as_its_document_says(server_url: str, registry: Registry) -> None:
    failures = fuzz(server_url, {"Authorization": f"Bearer {registry.client('admin')}"})
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
def test_the_api_answers_anyone_as_its_document_says(server_url: str, registry: Registry) -> None:
    failures = fuzz(server_url, {})
    assert not failures, "\n\n".join(failures)
