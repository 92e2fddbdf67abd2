"""Every shell block in the README and the docs is run by a test, or says why it is not run here.

A block is preceded by one of two HTML comments (invisible on GitHub and on the site):

    <!-- run by: tests/test_cli_digits_flow.py -->      each `bep` command of the block, its noun, its verb and
                                                        every option it uses, is run by one of the named tests
    <!-- not run here: needs a deployed stack -->       and why (an AWS account, a placeholder such as JOB_ID)

A `run by` block holds `bep` commands only: they are the ones a test can be checked to run, as
`bep("model", "create", "--name", ...)` in the test's source.
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^```(?P<language>\S*)\s*$")
RUN_BY = re.compile(r"^<!--\s*run by:\s*(?P<tests>.+?)\s*-->$")
NOT_RUN = re.compile(r"^<!--\s*not run here:\s*(?P<reason>.*?)\s*-->$")


@dataclass(frozen=True)
class ShellBlock:
    where: str  # file:line of the opening fence
    marker: str  # the line before the block ("" when none)
    text: str

    def commands(self) -> list[list[str]]:
        """The block's commands as a shell splits them: continuations joined, comments dropped."""
        joined = self.text.replace("\\\n", " ")
        return [words for line in joined.splitlines() if (words := shlex.split(line, comments=True))]


def shell_blocks(path: Path) -> list[ShellBlock]:
    lines = path.read_text().splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        if opening["language"] in SHELL_LANGUAGES:
            where = f"{path.relative_to(ROOT)}:{index + 1}"
            blocks.append(ShellBlock(where, marker_before(lines, index), "\n".join(lines[index + 1 : end])))
        index = end + 1
    return blocks


def marker_before(lines: list[str], fence: int) -> str:
    """The HTML comment that ends on the last line with text before the fence, on one line; else that line."""
    last = next((i for i in range(fence - 1, -1, -1) if lines[i].strip()), None)
    if last is None:
        return ""
    first = last
    if lines[last].rstrip().endswith("-->"):
        first = next((i for i in range(last, -1, -1) if lines[i].lstrip().startswith("<!--")), last)
    return " ".join(line.strip() for line in lines[first : last + 1])


def problems(block: ShellBlock, root: Path = ROOT) -> list[str]:
    """What keeps the block from counting as run or as marked; none when it is fine."""
    if (not_run := NOT_RUN.match(block.marker)) is not None:
        return [] if not_run["reason"] else [f"{block.where}: 'not run here' gives no reason"]
    run_by = RUN_BY.match(block.marker)
    if run_by is None:
        return [f"{block.where}: neither run by a test nor marked '<!-- not run here: why -->'"]
    names = [name.strip() for name in run_by["tests"].split(",")]
    missing = [name for name in names if not (root / name).is_file()]
    if missing:
        return [f"{block.where}: no such test: {', '.join(missing)}"]
    sources = "\n".join((root / name).read_text() for name in names)
    return [f"{block.where}: {gap}" for command in block.commands() for gap in untested(command, sources)]


def untested(command: list[str], sources: str) -> list[str]:
    """The parts of one command that the tests' sources never pass to `bep`."""
    words = list(itertools.takewhile(lambda word: not word.startswith("-"), command[1:3]))
    if command[0] != "bep" or not words:
        return [f"{shlex.join(command)}: a test can be checked to run `bep NOUN [VERB] ...` commands only"]
    verbs = " ".join(words)
    gaps = []
    if not re.search(r",\s*".join(rf"[\"']{re.escape(word)}[\"']" for word in words), sources):
        gaps.append(f"`bep {verbs}` is run by none of the tests named")
    for option in (a.split("=", 1)[0] for a in command[1 + len(words) :] if a.startswith("--")):
        if not re.search(rf"[\"']{re.escape(option)}[\"']", sources):
            gaps.append(f"`bep {verbs} {option}` is passed by none of the tests named")
    return gaps


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


ALL_BLOCKS = [block for path in documents() for block in shell_blocks(path)]


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[block.where for block in ALL_BLOCKS])
def test_each_shell_block_is_run_by_a_test_or_says_why_not(block: ShellBlock) -> None:
    assert problems(block) == []


def test_the_blocks_are_found_in_the_readme_and_in_the_docs() -> None:
    found_in = {block.where.split(":")[0] for block in ALL_BLOCKS}
    assert "README.md" in found_in and any(name.startswith("docs/") for name in found_in)


def test_the_cli_pages_model_commands_run_as_written(bep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "examples" / "digits" / "model"
    model.mkdir(parents=True)
    (model / "model.pt").write_bytes(b"weights")
    bep("model", "create", "--name", "digits", "--path", "examples/digits/model")
    bep("model", "create", "--name", "digits", "--path", "examples/digits/model")
    assert "digits" in bep("model", "list").out
    assert bep("model", "show", "--name", "digits", "--label", "latest").json()["version"] == "2"


# The checker itself, on blocks written here.


def block(marker: str, text: str) -> ShellBlock:
    return ShellBlock("example.md:1", marker, text)


@pytest.fixture
def a_test(tmp_path: Path) -> Path:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text('bep("model", "create", "--name", "m", "--path", p)\n')
    return tmp_path


def test_an_unmarked_block_is_a_problem(a_test: Path) -> None:
    assert problems(block("Some prose.", "bep model list"), a_test) == [
        "example.md:1: neither run by a test nor marked '<!-- not run here: why -->'"
    ]


def test_a_block_not_run_must_say_why(a_test: Path) -> None:
    assert problems(block("<!-- not run here: needs AWS -->", "aws s3 ls"), a_test) == []
    assert problems(block("<!-- not run here: -->", "aws s3 ls"), a_test) == [
        "example.md:1: 'not run here' gives no reason"
    ]


def test_a_block_run_by_a_test_is_checked_against_what_the_test_passes(a_test: Path) -> None:
    marker = "<!-- run by: tests/test_a.py -->"
    covered = "bep model create --name digits \\\n    --path ./model   # registers version 1"
    assert problems(block(marker, covered), a_test) == []
    assert problems(block(marker, "bep model create --name d --label latest\nbep model list"), a_test) == [
        "example.md:1: `bep model create --label` is passed by none of the tests named",
        "example.md:1: `bep model list` is run by none of the tests named",
    ]


def test_a_block_run_by_a_test_names_tests_that_exist_and_holds_only_bep_commands(a_test: Path) -> None:
    assert problems(block("<!-- run by: tests/test_gone.py -->", "bep model list"), a_test) == [
        "example.md:1: no such test: tests/test_gone.py"
    ]
    assert problems(block("<!-- run by: tests/test_a.py -->", "curl http://127.0.0.1:8080"), a_test) == [
        "example.md:1: curl http://127.0.0.1:8080: a test can be checked to run `bep NOUN [VERB] ...` commands only"
    ]
