"""Two clients updating one deployment at the same moment: one wins, the other is told to retry, nothing is lost.

Each Lambda invocation serves one request, so the race is between two service calls; ConflictError becomes the
API's 409 in one place (tested with the error shapes).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from batch_endpoints import yaml_specs
from batch_endpoints.errors import ConflictError
from batch_endpoints.repository import DEPLOYMENT
from tests.api_fixtures import (  # noqa: F401 (pytest fixtures)
    Folders,
    Stack,
    api_fixture,
    aws_fixture,
    deployment_body,
    folders_fixture,
    ready_fixture,
    stack_fixture,
)
from tests.faults import hold_writes_until_both_arrive


def test_concurrent_updates_of_one_deployment_one_wins_the_other_conflicts(ready: Stack, folders: Folders):
    def update(mini_batch_size: int):
        body = deployment_body(folders, settings={"mini_batch_size": mini_batch_size})
        declaration = yaml_specs.load_deployment_mapping(
            {**body, "name": "blue", "endpoint_name": "digits"}, None, source=""
        )
        try:
            return ready.service.update_deployment(declaration, caller=f"client-{mini_batch_size}")
        except ConflictError as conflict:
            return conflict

    with hold_writes_until_both_arrive(ready.backend.records, DEPLOYMENT), ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(update, [5, 7]))

    conflicts = [o for o in outcomes if isinstance(o, ConflictError)]
    winners = [o for o in outcomes if not isinstance(o, ConflictError)]
    assert len(conflicts) == 1 and len(winners) == 1
    assert "changed by another request" in conflicts[0].message
    stored = ready.service.get_deployment("digits", "blue")
    assert stored == winners[0], "the stored deployment is exactly the winner's, whole"
    assert stored.settings.mini_batch_size in {5, 7}
