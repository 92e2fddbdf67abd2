"""Which libraries the workers' fork server imports (batch_container.preload)."""

from __future__ import annotations

from pathlib import Path

from batch_container.preload import ALWAYS, libraries


def script(tmp_path: Path, text: str) -> str:
    path = tmp_path / "score.py"
    path.write_text(text)
    return str(path)


def test_the_scripts_fork_safe_top_level_imports_are_preloaded_after_what_every_worker_needs(tmp_path):
    text = "import os\nimport torch.nn as nn\nfrom PIL import Image\nimport digits_net\nfrom . import helpers\n"
    assert libraries(script(tmp_path, text)) == [*ALWAYS, "torch", "PIL"]


def test_imports_inside_functions_and_unknown_libraries_are_left_to_the_worker(tmp_path):
    text = "import requests\n\ndef init():\n    import torch\n"
    assert libraries(script(tmp_path, text)) == list(ALWAYS)


def test_a_script_that_cannot_be_parsed_or_read_preloads_only_what_every_worker_needs(tmp_path):
    assert libraries(script(tmp_path, "def broken(:\n")) == list(ALWAYS)
    assert libraries(str(tmp_path / "missing.py")) == list(ALWAYS)
