"""Running the digits example's scripts as a user types them, shared by the tests that need a trained model."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits"


def run_scripts(*commands: tuple[str | Path, ...]) -> list[str]:
    """Run example scripts side by side (each trains on one thread) and return what each printed."""
    running = [
        subprocess.Popen(
            [sys.executable, str(EXAMPLE / script), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for script, *args in commands
    ]
    printed = []
    for command, process in zip(commands, running, strict=True):
        out, err = process.communicate()
        assert process.returncode == 0, f"{command} failed:\n{err}"
        printed.append(out)
    return printed


def train_both_variants(root: Path) -> dict[str, Path]:
    folders = {"standard": root / "model", "small": root / "model-small"}
    printed = run_scripts(*(("train.py", "--output", folder, "--variant", v) for v, folder in folders.items()))
    assert all("test accuracy" in out for out in printed)
    return folders


def import_by_path(path: Path, name: str) -> ModuleType:
    """An example's module, imported from its file as the example's own scripts do (examples are no package)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digits_data() -> ModuleType:
    """The example's data module (examples/digits/digits_data.py): its images are the ones the model trains on."""
    return import_by_path(EXAMPLE / "digits_data.py", "digits_data")
