"""A static, offline HTML page of dashboards: one file, inline CSS and SVG, no script and no network.

write_dashboard_html("latent-12.html", [latent_dashboard(...), neuron_dashboard(...)], title="...")
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from ..atomic import write_atomic
from .dashboard import Example, LatentDashboard

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em}
.ex{font-family:ui-monospace,monospace;white-space:pre-wrap;margin:.15em 0}
.tok{border-radius:2px}.tok.c{outline:1px solid #c33}
.val{color:#777;font-size:12px;margin-right:.6em}
table{border-collapse:collapse;margin:.5em 2em .5em 0;display:inline-table;vertical-align:top}
td,th{padding:1px 8px;text-align:left;font-family:ui-monospace,monospace}
.note{color:#a55}
"""


def _token_span(text: str, value: float, peak: float, centre: bool) -> str:
    alpha = max(0.0, min(1.0, value / peak)) if peak > 0 else 0.0
    shown = escape(text.replace("\n", "\\n"))
    cls = "tok c" if centre else "tok"
    return f'<span class="{cls}" title="{value:.4g}" style="background:rgba(255,120,0,{alpha:.3f})">{shown}</span>'


def _example_html(ex: Example, peak: float) -> str:
    spans = "".join(_token_span(t, v, peak, ex.start + i == ex.position) for i, (t, v) in enumerate(zip(ex.tokens, ex.values)))
    return f'<div class="ex"><span class="val">{ex.value:.3f}</span>{spans}</div>'


def _histogram_svg(edges: list[float], counts: list[float], width: int = 420, height: int = 120) -> str:
    if not counts:
        return "<p>never active on these tokens</p>"
    top = max(counts) or 1.0
    bar = width / len(counts)
    rects = "".join(
        f'<rect x="{i * bar:.1f}" y="{height - c / top * height:.1f}" width="{bar - 1:.1f}" height="{c / top * height:.1f}" fill="#e70"/>'
        for i, c in enumerate(counts)
    )
    label = f'<text x="0" y="{height + 14}" font-size="11">{edges[0]:.3g}</text><text x="{width}" y="{height + 14}" font-size="11" text-anchor="end">{edges[-1]:.3g}</text>'
    return f'<svg width="{width}" height="{height + 18}" role="img" aria-label="activation histogram">{rects}{label}</svg>'


def _logit_table(title: str, rows: list[dict]) -> str:
    body = "".join(f"<tr><td>{escape(repr(r['token']))}</td><td>{r['value']:+.3f}</td></tr>" for r in rows)
    return f"<table><tr><th colspan=2>{escape(title)}</th></tr>{body}</table>"


def dashboard_section(d: LatentDashboard) -> str:
    peak = d.max_activation
    parts = [
        f"<h2>{escape(d.kind)} {d.index} <small>({escape(d.hook_name)})</small></h2>",
        f"<p>density {d.density:.3%} of {d.tokens_seen} tokens; max activation {peak:.4g}</p>",
        _histogram_svg(d.histogram["edges"], d.histogram["counts"]),
        "<div>"
        + _logit_table("top logits", d.top_logits)
        + _logit_table("bottom logits", d.bottom_logits)
        + _logit_table("nearest (cosine)", [{"token": n["index"], "value": n["cosine"]} for n in d.neighbours])
        + "</div>",
        *(f'<p class="note">{escape(n)}</p>' for n in d.notes),
        "<h3>top activations</h3>",
        *(_example_html(ex, peak) for ex in d.top_examples),
    ]
    for group in d.quantile_examples:
        if group["examples"]:
            parts.append(f"<h3>interval ({group['low']:.3g}, {group['high']:.3g}]: {group['count']} tokens</h3>")
            parts += [_example_html(ex, peak) for ex in group["examples"]]
    return "\n".join(parts)


def dashboard_html(dashboards: list[LatentDashboard], title: str) -> str:
    body = "\n".join(f"<section>{dashboard_section(d)}</section>" for d in dashboards)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def write_dashboard_html(path: str | os.PathLike, dashboards: list[LatentDashboard], title: str) -> Path:
    write_atomic(path, dashboard_html(dashboards, title).encode())
    return Path(path)
