"""The docs site's hook for links from the docs to the code: a moved file fails the build, a link that holds shows
its text on the site, and links between pages are left to mkdocs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("mkdocs")

HOOK = Path(__file__).resolve().parents[1] / "docs" / "hooks" / "code_links.py"
spec = importlib.util.spec_from_file_location("code_links", HOOK)
assert spec and spec.loader
code_links = importlib.util.module_from_spec(spec)
spec.loader.exec_module(code_links)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "lambda_code.py").write_text("")
    return tmp_path


def unlink(repo: Path, markdown: str) -> str:
    return code_links.unlink_code(markdown, repo / "docs" / "page.md", repo / "docs")


def test_a_link_to_code_that_exists_becomes_its_text(repo: Path) -> None:
    assert unlink(repo, "see [infra/lambda_code.py](../infra/lambda_code.py).") == "see infra/lambda_code.py."
    assert unlink(repo, "the [infra](../infra) folder") == "the infra folder"


def test_a_link_to_code_that_is_gone_fails_naming_the_page_and_the_link(repo: Path) -> None:
    with pytest.raises(code_links.BrokenCodeLink, match=r"page\.md: the link to \.\./infra/gone\.py leads to"):
        unlink(repo, "[gone](../infra/gone.py)")


def test_links_between_pages_to_the_web_and_in_code_blocks_are_left_alone(repo: Path) -> None:
    markdown = (
        "[security](security.md#data-access) [aws](https://aws.amazon.com/) [top](#top)\n"
        "```bash\necho '[x](../nowhere.py)'\n```\n"
    )
    assert unlink(repo, markdown) == markdown


def test_the_hook_fails_the_build_with_a_plugin_error(repo: Path) -> None:
    from mkdocs.exceptions import PluginError

    page = SimpleNamespace(file=SimpleNamespace(src_path="page.md"))
    with pytest.raises(PluginError, match=r"gone\.py"):
        code_links.on_page_markdown("[gone](../gone.py)", page, {"docs_dir": str(repo / "docs")}, None)
