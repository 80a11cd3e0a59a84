"""Self-contained report pages: what Kubeflow's UI shows for a step's HTML and Markdown outputs.

The UI renders an HTML artifact in a sandboxed frame that cannot fetch sibling files, so the
pictures are inlined as data URIs.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

IMAGES_HEADING = "\n## Images"


def html_gallery(title: str, images: list[tuple[str, Path]], note: str = "") -> str:
    """One HTML page with every PNG inlined under its caption."""
    parts = [
        "<!doctype html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1em}img{max-width:100%}"
        "figure{margin:0 0 1.5em 0}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    for caption, path in images:
        data = base64.b64encode(Path(path).read_bytes()).decode()
        parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def tables_only(report_md: str) -> str:
    """``report.md`` without its pictures (their relative links do not resolve in the UI)."""
    return report_md.split(IMAGES_HEADING, 1)[0].rstrip() + "\n"
