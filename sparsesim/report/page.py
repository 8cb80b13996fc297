"""The self-contained HTML page: Vega, Vega-Lite and vega-embed inlined (no server, no internet)."""
from __future__ import annotations

import html
import json

import altair as alt
import vl_convert

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<title>{title}</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }}
 table {{ border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }}
 th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}
 td:first-child, th:first-child, td:last-child {{ text-align: left; }}
 .chart {{ margin: 1em 0 2.5em; }}
 .note {{ color: #555; max-width: 900px; }}
</style>
<script>
 window.sparsesimErrors = [];
 window.addEventListener("error", e => window.sparsesimErrors.push(String(e.message)));
 const consoleError = console.error;
 console.error = (...args) => {{ window.sparsesimErrors.push(args.map(String).join(" ")); consoleError(...args); }};
</script>
<script>
{bundle}
</script>
</head>
<body>
<h1>{title}</h1>
{body}
<script>
 const specs = {specs};
 Promise.all(Object.entries(specs).map(([id, spec]) =>
   vegaEmbed("#" + id, spec, {{renderer: "svg", actions: {{export: true, source: false, compiled: false, editor: false}}}})))
  .then(() => {{ document.body.dataset.rendered = Object.keys(specs).length; }})
  .catch(e => {{ window.sparsesimErrors.push(String(e)); }})
  .finally(() => {{ document.body.dataset.errors = JSON.stringify(window.sparsesimErrors); }});
</script>
</body>
</html>
"""


def vega_bundle() -> str:
    """vega-embed with Vega and Vega-Lite, as one script (vl-convert ships it; no CDN)."""
    version = alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]
    return vl_convert.javascript_bundle(vl_version=version)


def section(title: str, content: str, note: str = "") -> str:
    note_html = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return f"<h2>{html.escape(title)}</h2>{note_html}{content}"


def chart_div(chart_id: str) -> str:
    return f'<div class="chart" id="{chart_id}"></div>'


def render(title: str, body: str, specs: dict[str, dict]) -> str:
    return TEMPLATE.format(title=html.escape(title), body=body, bundle=vega_bundle(),
                           specs=json.dumps(specs).replace("</", "<\\/"))
