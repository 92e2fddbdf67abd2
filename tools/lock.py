"""`make lock`: requirements.lock, every package of the `dev` extra pinned with its hashes (pip-compile).

torch is pinned by its public version. The development and CI machines carry a CPU build of torch 2.13.0 among
pip's local wheels (`torch-2.13.0+cpu`), which pip prefers to PyPI's 2.13.0 (a local version sorts after its public
one) and which needs none of the CUDA libraries PyPI's build pulls in. pip-compile pins what it resolved,
`torch==2.13.0+cpu`; the lock says `torch==2.13.0`, which the GPU image's CUDA build meets too, with the CPU
build's hash alone: listing PyPI's hashes as well makes pip prefer PyPI's file (its index publishes the hash, a
local file's is unknown until read), then fail on the CUDA packages the lock does not hold.

Run with pip-tools installed: `python tools/lock.py requirements.lock` (the Makefile's `lock` target does).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TORCH = "torch==2.13.0"
PIP_COMPILE = (
    "--quiet",
    "--generate-hashes",
    "--no-emit-index-url",
    "--no-emit-find-links",
    "--strip-extras",
    # The project itself comes in through the `dev` extra's self-reference; it is installed from the working tree.
    "--unsafe-package",
    "batch-endpoints",
)
TORCH_PIN = re.compile(r"^torch==2\.13\.0\+\w+", re.M)


def pip_compile(*arguments: str) -> None:
    command = [sys.executable, "-m", "piptools", "compile", *PIP_COMPILE, *arguments]
    # The header names the command to rerun, not this script's scratch files.
    subprocess.run(command, check=True, env={**os.environ, "CUSTOM_COMPILE_COMMAND": "make lock"})


def with_public_torch_pin(lock: str) -> str:
    pins = TORCH_PIN.findall(lock)
    if len(pins) != 1:
        raise SystemExit(f"expected one torch pin in pip-compile's output, found {len(pins)}")
    return TORCH_PIN.sub(TORCH, lock)


def main(output: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        resolved = Path(scratch, "resolved.txt")
        if output.exists():
            # pip-compile keeps the pins it finds in its output file when they still fit: versions change only
            # where pyproject.toml asks for it.
            shutil.copy(output, resolved)
        pip_compile("--extra", "dev", "--output-file", str(resolved), "pyproject.toml")
        output.write_text(with_public_torch_pin(resolved.read_text()))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
