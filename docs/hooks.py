"""MkDocs hook: the configuration reference is generated from the config's field docs."""

from __future__ import annotations

from typing import Any


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_path == "configuration.md":
        from vidpipe.stages.config_docs import reference_markdown

        reference = reference_markdown().split("\n", 2)[2]  # without its own title
        return markdown.replace("<!-- config-reference -->", reference)
    return markdown
