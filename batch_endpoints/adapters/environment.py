"""The backend a process's environment names: the one place that chooses between the two sets of adapters, so the
core never imports either."""

from __future__ import annotations

import os

from batch_endpoints.backend import BACKEND_VARIABLE, Backend, local_home
from batch_endpoints.errors import ValidationError


def from_environment() -> Backend:
    name = os.environ.get(BACKEND_VARIABLE, "local")
    if name == "local":
        from batch_endpoints.adapters.local.backend import open_local_backend

        return open_local_backend(local_home())
    if name == "aws":
        from batch_endpoints.adapters.aws.backend import open_aws_backend

        return open_aws_backend()
    raise ValidationError(f"unknown backend {name!r}; expected 'local' or 'aws'", field=BACKEND_VARIABLE)
