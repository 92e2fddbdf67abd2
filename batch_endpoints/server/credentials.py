"""The one access key pair clients of the local API server sign with, standing in for an IAM user.

Kept in `<home>/server-credentials.json` (owner-only), generated on first use, or given by the environment
(both variables, e.g. to share one pair across machines or CI). `bep serve --show-credentials` prints it.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from batch_endpoints.errors import ValidationError

FILE_NAME = "server-credentials.json"
ACCESS_KEY_VARIABLE = "BEP_SERVER_ACCESS_KEY_ID"
SECRET_KEY_VARIABLE = "BEP_SERVER_SECRET_ACCESS_KEY"
USER_VARIABLE = "BEP_SERVER_USER"
# The account in identities the local server reports; AWS's documentation uses this one for "no real account".
LOCAL_ACCOUNT = "000000000000"
# Shaped like AWS keys (20-character id, 40-character secret) so tools that check the shape accept them; the
# prefix tells anyone who finds one in a log that it opens a local server only.
KEY_PREFIX = "BEPLOCAL"
KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class LocalCredentials:
    access_key_id: str
    secret_access_key: str
    user: str

    @property
    def user_arn(self) -> str:
        return f"arn:aws:iam::{LOCAL_ACCOUNT}:user/{self.user}"

    def as_shell(self) -> str:
        """Lines a shell can `eval`, for clients that read the standard AWS variables."""
        return f"export AWS_ACCESS_KEY_ID={self.access_key_id}\nexport AWS_SECRET_ACCESS_KEY={self.secret_access_key}\n"


def generate(user: str) -> LocalCredentials:
    key_id = KEY_PREFIX + "".join(secrets.choice(KEY_ALPHABET) for _ in range(20 - len(KEY_PREFIX)))
    return LocalCredentials(key_id, secrets.token_urlsafe(30), user)


def load_or_create(home: str, environ: Mapping[str, str] = os.environ) -> LocalCredentials:
    user = environ.get(USER_VARIABLE) or environ.get("USER") or environ.get("USERNAME") or "local-user"
    key_id, secret = environ.get(ACCESS_KEY_VARIABLE), environ.get(SECRET_KEY_VARIABLE)
    if key_id and secret:
        return LocalCredentials(key_id, secret, user)
    if key_id or secret:
        missing = SECRET_KEY_VARIABLE if key_id else ACCESS_KEY_VARIABLE
        raise ValidationError("is not set; set both variables or neither", field=missing)
    path = os.path.join(home, FILE_NAME)
    os.makedirs(home, exist_ok=True)
    try:
        # Created owner-only and exclusively: two servers starting at once agree on the first one's key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    credentials = generate(user)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(credentials), out, indent=2)
    return credentials


def _read(path: str) -> LocalCredentials:
    try:
        with open(path) as f:
            stored = json.load(f)
        return LocalCredentials(stored["access_key_id"], stored["secret_access_key"], stored["user"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValidationError(
            f"cannot read {path} ({error}); delete it to generate a new key pair", field=FILE_NAME
        ) from None
