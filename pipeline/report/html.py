"""A single self-contained HTML report: inline CSS, figures embedded as data URIs, no scripts."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
p.summary{background:#f4f6fa;border-left:4px solid #4a6fa5;padding:.6em .9em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right} th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figcaption{font-size:.85em;color:#555;max-width:600px}
img{max-width:100%;image-rendering:pixelated}
"""


@dataclass
class Section:
    title: str
    summary: str
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Path | bytes]] = field(default_factory=list)   # a PNG file, or PNG bytes drawn here


def _img_tag(path: Path | bytes) -> str:
    raw, alt = (path, "figure") if isinstance(path, bytes) else (Path(path).read_bytes(), Path(path).stem)
    data = base64.b64encode(raw).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(caption: str, frame: pd.DataFrame) -> str:
    body = frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, na_rep="–")
    return f"<h3>{html.escape(caption)}</h3>\n{body}"


def render_html(title: str, subtitle: str, sections: list[Section]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>",
        "<nav><ol>" + "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections)) + "</ol></nav>",
    ]
    for i, s in enumerate(sections):
        parts.append(f'<section id="s{i}"><h2>{html.escape(s.title)}</h2>')
        parts.append(f'<p class="summary">{html.escape(s.summary)}</p>')
        parts.extend(_table(c, f) for c, f in s.tables)
        parts.extend(
            f"<figure>{_img_tag(p)}<figcaption>{html.escape(c)}</figcaption></figure>" for c, p in s.figures
        )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
