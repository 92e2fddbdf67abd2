"""Fixtures shared by the CLI-level tests: a fresh local home per test and a way to run `bep` in-process."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from batch_container.warm_fork import IDLE_VARIABLE
from batch_endpoints.adapters.environment import from_environment
from batch_endpoints.backend import HOME_VARIABLE
from batch_endpoints.cli.main import main as bep_main
from batch_endpoints.service import BatchEndpointService
from tests.example_scripts import train_both_variants
from tests.faults import LEDGER, ledger_lines

# Every test's local home gets its own warm fork servers (batch_container.warm_fork): let them go soon after.
os.environ.setdefault(IDLE_VARIABLE, "5")


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)


class Bep:
    """Runs `bep` commands against one local home, the way a user's shell would."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str, ok: bool = True) -> CliResult:
        self.capsys.readouterr()
        code = bep_main([str(a) for a in args])
        out, err = self.capsys.readouterr()
        result = CliResult(code, out, err)
        if ok and code != 0:
            raise AssertionError(f"bep {' '.join(map(str, args))} exited {code}: {err}")
        return result

    @property
    def service(self) -> BatchEndpointService:
        return BatchEndpointService(from_environment())


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both digits model variants, trained once for the whole test session (seconds each)."""
    return train_both_variants(tmp_path_factory.mktemp("digits-models"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "bep-home"
    monkeypatch.setenv(HOME_VARIABLE, str(home))
    return home


@pytest.fixture
def bep(home: Path, capsys: pytest.CaptureFixture[str]) -> Bep:
    return Bep(capsys)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault-injection suite's table (tests/faults.py), when any of its faults ran."""
    if LEDGER:
        terminalreporter.write_sep("=", "fault injection: every input file is in one row or in the errors file")
        for line in ledger_lines():
            terminalreporter.write_line(line)
