"""How the project runs pip to install libraries into a folder: the runner, an environment's requirements for its
workers; the Lambda bundling, the functions' libraries."""

from __future__ import annotations

import sys


def pip_install_command(target: str, *arguments: str) -> list[str]:
    """This interpreter's `pip install --target target *arguments`, quiet, never prompting (no one is there to
    answer: a job, a synth) and not asking the index whether a newer pip exists."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        target,
        *arguments,
    ]
