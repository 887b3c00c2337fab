"""A single self-contained HTML report that works from a file:// URL with no network.

The page opens with one card per research question (headline number, baseline, verdict, one
picture); each section then leads with its figure and its sentence, and its tables fold under
them in ``<details>``, sortable by clicking a header. Interactive charts are Vega-Lite specs drawn
by the inlined Vega bundle (:mod:`pipeline.report.vega`); static figures are PNG data URIs,
reduced to a 256-colour palette (``palette=True``, the default: a third of the bytes of the
figures as drawn, and they are most of the page) or as drawn (``palette=False``).
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.report.vega import EMBED_ALL, chart_html, script_tag, vega_bundle

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
p.summary{background:#f4f6fa;border-left:4px solid #4a6fa5;padding:.6em .9em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right} th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}
table.sortable th{cursor:pointer;user-select:none} table.sortable th:after{content:" ⇅";color:#999;font-size:.8em}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figcaption{font-size:.85em;color:#555;max-width:600px}
img{max-width:100%;image-rendering:pixelated}
details{margin:.8em 0} summary{cursor:pointer;color:#4a6fa5;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(350px,1fr));gap:1em;margin:1em 0 2em}
.card{border:1px solid #d6dbe4;border-radius:8px;padding:.8em 1em;background:#fbfcfe}
.card h3{margin:.1em 0 .4em;font-size:1em;color:#4a6fa5}
.card .finding{font-size:.9em;color:#444}
.card .value{font-size:1.8em;font-weight:700;margin:.2em 0}
.card .baseline{font-size:.9em;color:#555}
.card .verdict{font-weight:600;margin:.4em 0}
.verdict.good{color:#1b7f3b} .verdict.bad{color:#b23b3b} .verdict.neutral{color:#8a6d00}
.card img{max-height:150px;display:block;margin-top:.5em}
.vega-chart{margin:.5em 0 1em}
.vega-bindings{font-size:.9em;margin:.3em 0} .vega-bind{display:inline-block;margin-right:1.2em}
"""

# Click a header of a table.sortable to sort its rows by that column (numbers as numbers, "–" last).
_SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('thead th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var asc = th.dataset.order !== 'asc';
      table.querySelectorAll('thead th').forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = asc ? 'asc' : 'desc';
      var key = function (r) {
        var text = r.cells[col] ? r.cells[col].textContent.trim() : '';
        var num = parseFloat(text.replace('−', '-'));
        return isNaN(num) ? [1, text] : [0, num];
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x[0] !== y[0]) return x[0] - y[0];
        var c = x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0;
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


@dataclass
class Section:
    title: str
    summary: str
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Path | bytes]] = field(default_factory=list)   # a PNG file, or PNG bytes drawn here
    charts: list[tuple[str, dict]] = field(default_factory=list)            # (caption, Vega-Lite spec)
    lead: str = "chart"   # what opens the section: its first chart, or its first "figure"


@dataclass
class Card:
    """One research question's headline: ``value`` (the number as shown) read from ``source`` at the
    dotted ``key`` (kept on the card as data attributes, so a test can check it against the file)."""

    question: str
    finding: str
    value: str
    baseline: str
    verdict: str
    tone: str = "neutral"   # good | bad | neutral
    source: str = ""        # metrics file, relative to the reports directory
    key: str = ""           # dotted key of the headline number in that file
    raw: float | None = None
    picture: Path | bytes | None = None


def palette_png(raw: bytes) -> bytes:
    """A PNG figure with its colours reduced to a 256-colour palette (alpha kept), or ``raw`` itself
    when that is not smaller. Charts drawn by matplotlib hold few colours beyond their anti-aliasing,
    and galleries of small decoded images survive the dithering."""
    from PIL import Image

    im = Image.open(io.BytesIO(raw))
    im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    method = Image.Quantize.FASTOCTREE if im.mode == "RGBA" else Image.Quantize.MEDIANCUT
    out = io.BytesIO()
    im.quantize(256, method=method).save(out, "PNG", optimize=True)
    return out.getvalue() if out.tell() < len(raw) else raw


def _img_tag(path: Path | bytes, palette: bool = True) -> str:
    raw, alt = (path, "figure") if isinstance(path, bytes) else (Path(path).read_bytes(), Path(path).stem)
    data = base64.b64encode(palette_png(raw) if palette else raw).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def table_html(caption: str, frame: pd.DataFrame) -> str:
    """A captioned, sortable table."""
    body = frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, na_rep="–", classes="sortable")
    return f"<h3>{html.escape(caption)}</h3>\n{body}"


def _card(c: Card, palette: bool = True) -> str:
    attrs = f' data-source="{html.escape(c.source)}" data-key="{html.escape(c.key)}"' if c.source else ""
    if c.raw is not None:
        attrs += f' data-value="{c.raw!r}"'
    pic = _img_tag(c.picture, palette) if c.picture is not None else ""
    return (f'<div class="card"{attrs}><h3>{html.escape(c.question)}</h3>'
            f'<div class="finding">{html.escape(c.finding)}</div><div class="value">{html.escape(c.value)}</div>'
            f'<div class="baseline">baseline: {html.escape(c.baseline)}</div>'
            f'<div class="verdict {html.escape(c.tone)}">{html.escape(c.verdict)}</div>{pic}</div>')


def _figure(caption: str, path: Path | bytes, palette: bool = True) -> str:
    return f"<figure>{_img_tag(path, palette)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def page(title: str, subtitle: str, body: list[str]) -> str:
    """A whole page: the head (CSS, the Vega bundle), ``body`` and the scripts that draw the charts
    and make tables sortable."""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>",
        script_tag(vega_bundle()), "</head><body>",
        f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>",
        *body,
        script_tag(EMBED_ALL + _SORT_JS),
        "</body></html>",
    ])


def chart_figure(element_id: str, caption: str, spec: dict) -> str:
    """A Vega-Lite chart with its caption."""
    return f"<figure>{chart_html(element_id, spec)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def render_html(title: str, subtitle: str, sections: list[Section], cards: list[Card] = (), *,
                palette: bool = True) -> str:
    """The report page; ``palette``: PNG figures in a 256-colour palette (:func:`palette_png`)."""
    parts = []
    if cards:
        parts.append('<div class="cards" id="cards">' + "".join(_card(c, palette) for c in cards) + "</div>")
    parts.append("<nav><ol>" + "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>'
                                        for i, s in enumerate(sections)) + "</ol></nav>")
    n_chart = 0
    for i, s in enumerate(sections):
        visuals = []
        for caption, spec in s.charts:
            visuals.append(chart_figure(f"chart{n_chart}", caption, spec))
            n_chart += 1
        figures = [_figure(c, p, palette) for c, p in s.figures]
        visuals = visuals + figures if s.lead == "chart" else figures + visuals
        parts.append(f'<section id="s{i}"><h2>{html.escape(s.title)}</h2>')
        parts.extend(visuals[:1])
        parts.append(f'<p class="summary">{html.escape(s.summary)}</p>')
        parts.extend(visuals[1:])
        if s.tables:
            parts.append(f"<details><summary>Tables ({len(s.tables)}): every number with its spread and baseline"
                         "</summary>" + "\n".join(table_html(c, f) for c, f in s.tables) + "</details>")
        parts.append("</section>")
    return page(title, subtitle, parts)
