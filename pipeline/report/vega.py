"""The Vega, Vega-Lite and Vega-Embed JavaScript, inlined into pages so they render with no network.

The bundle comes from ``vl-convert-python`` (:func:`vl_convert.javascript_bundle`): a pinned PyPI
wheel that already ships Vega, Vega-Lite, Vega-Embed (with vega-tooltip) built into one
self-contained script, so nothing is fetched from npm or a CDN at build or view time and the
JavaScript version moves only when the pin does. Altair writes the specs; its Vega-Lite schema
(v6) matches the bundle's default. DVC's own plots are Vega-Lite v5 specs, so the DVC template
(:func:`dvc_plots_template`) carries a v5 bundle.
"""

from __future__ import annotations

import functools
import html
import json

import vl_convert


@functools.lru_cache(maxsize=4)
def vega_bundle(vl_version: str | None = None) -> str:
    """Vega + Vega-Lite + Vega-Embed as one classic script that defines ``window.vegaEmbed``.

    The bundle's top-level declarations are wrapped in a function scope so they cannot collide with
    a page's own globals (DVC's plot pages declare ``var spec`` per plot)."""
    return "(function(){\n" + vl_convert.javascript_bundle(vl_version=vl_version) + "\n})();"


def script_tag(code: str) -> str:
    """``code`` as an inline classic ``<script>``; ``</script`` inside it is escaped."""
    return "<script>" + code.replace("</script", "<\\/script") + "</script>"


def json_tag(element_id: str, value) -> str:
    """``value`` as an inert ``<script type="application/json">`` a page script can parse."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    return f'<script type="application/json" id="{html.escape(element_id)}">{text}</script>'


# Finds every <div class="vega-chart" data-spec="ID">, parses the JSON spec ID and draws it as SVG.
# A failed chart logs console.error (the browser test fails on it) and shows the error in place.
EMBED_ALL = """
document.querySelectorAll('div.vega-chart').forEach(function (el) {
  var spec = JSON.parse(document.getElementById(el.dataset.spec).textContent);
  vegaEmbed(el, spec, {renderer: 'svg', actions: false}).then(function () {
    el.dataset.rendered = 'true';
  }).catch(function (err) {
    console.error('chart ' + el.dataset.spec + ': ' + err);
    el.textContent = 'This chart failed to render: ' + err;
  });
});
"""


def chart_html(element_id: str, spec: dict) -> str:
    """A placeholder div and its spec; :data:`EMBED_ALL` (run once after the bundle) draws it."""
    return (f'<div class="vega-chart" id="{html.escape(element_id)}" data-spec="{html.escape(element_id)}-spec"></div>'
            + json_tag(f"{element_id}-spec", spec))


DVC_TEMPLATE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot (offline)</title>
    <!-- Vega, Vega-Lite {vl_version} and Vega-Embed inlined (vl-convert-python); no CDN. -->
    __BUNDLE__
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def dvc_plots_template(vl_version: str = "5.21") -> str:
    """An HTML template for ``dvc plots show / diff`` (DVC config ``plots.html_template``) with the
    Vega bundle inlined in place of DVC's CDN ``{scripts}``: the plots render offline.

    DVC fills ``{plot_divs}`` with one inline ``vegaEmbed(...)`` script per plot, so the bundle is a
    classic script in the head, defined before they run."""
    return DVC_TEMPLATE.replace("{vl_version}", vl_version).replace("__BUNDLE__", script_tag(vega_bundle(vl_version)))
