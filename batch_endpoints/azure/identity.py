"""Stand-ins for `azure.identity`'s credentials, so that `MLClient(DefaultAzureCredential(), ...)` runs unchanged.

They hold nothing and sign nothing: requests to a deployed stack are signed with AWS credentials (the standard
chain, or the profile given to MLClient), and the local backend needs none.
"""

from __future__ import annotations

from typing import Any


class DefaultAzureCredential:
    def __init__(self, **kwargs: Any) -> None:
        """Azure's options (exclude_*_credential, tenant ids, ...) are accepted and mean nothing here."""


class AzureCliCredential(DefaultAzureCredential):
    pass


class InteractiveBrowserCredential(DefaultAzureCredential):
    pass


class ManagedIdentityCredential(DefaultAzureCredential):
    pass
