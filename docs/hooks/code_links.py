"""Links from the docs to the project's code: checked when the site is built, and shown there as plain paths.

A page links to code the way GitHub resolves it, relative to the page (`../batch_endpoints/specs.py`). The site
holds only the docs, so such a link would lead nowhere there: the build checks that the file or folder exists
(a moved file fails `mkdocs build`) and writes the link's text alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mkdocs.exceptions import PluginError

FENCED_BLOCK = re.compile(r"(^(?:```|~~~)[\s\S]*?^(?:```|~~~)[ \t]*$)", re.MULTILINE)
LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<target>[^)\s#]+)(?:#[^)\s]*)?\)")


class BrokenCodeLink(ValueError):
    pass


def unlink_code(markdown: str, page: Path, docs_dir: Path) -> str:
    """The page's markdown with its links out of `docs_dir` made plain text; code blocks are left as they are.

    `page` is the page's source file. A link out of the docs to nothing raises BrokenCodeLink.
    """
    pieces = FENCED_BLOCK.split(markdown)  # the text between blocks at even indexes, the blocks at odd ones
    return "".join(
        piece if index % 2 else LINK.sub(lambda link: _plain_if_outside(link, page, docs_dir), piece)
        for index, piece in enumerate(pieces)
    )


def _plain_if_outside(link: re.Match[str], page: Path, docs_dir: Path) -> str:
    target = link["target"]
    if "://" in target or target.startswith(("mailto:", "/")):
        return link[0]
    resolved = Path(os.path.normpath(page.parent / target))
    if resolved.is_relative_to(docs_dir):
        return link[0]  # a page or file of the site: mkdocs checks it
    if not resolved.exists():
        raise BrokenCodeLink(f"{page.name}: the link to {target} leads to {resolved}, which does not exist")
    return link["text"]


def on_page_markdown(markdown: str, page, config, files) -> str:
    docs_dir = Path(config["docs_dir"]).resolve()
    try:
        return unlink_code(markdown, docs_dir / page.file.src_path, docs_dir)
    except BrokenCodeLink as error:
        raise PluginError(str(error)) from error
