"""HTML pieces shared by the self-contained pages (report, backtest).

Tables as HTML, figures embedded as base64 PNG images, styles inline: no external
resource, so a page can be e-mailed or opened offline. Files are written all or none.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["STYLE", "document", "figure_html", "meta_html", "table_html", "write_together"]

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; background: #fff; line-height: 1.45; }
h1 { border-bottom: 3px solid #1f77b4; padding-bottom: .2em; }
h2 { margin-top: 1.8em; color: #1f4e79; }
table { border-collapse: collapse; margin: .8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; }
th { background: #eef3f8; }
td:first-child, th:first-child { text-align: left; }
.meta td, .quadrants td:nth-child(2) { text-align: left; }
.note { color: #555; font-size: 0.9em; }
img { max-width: 100%; border: 1px solid #ddd; margin: .5em 0; }
"""


def figure_html(figure: Any, alt: str) -> str:
    """A figure as an ``<img>`` with a base64 PNG data URI; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(table: pd.DataFrame, css_class: str = "", index: bool = False) -> str:
    if not index and table.index.name is not None:
        table = table.reset_index()
    return table.to_html(index=index, escape=True, border=0, classes=css_class or None)


def meta_html(rows: Mapping[str, Any]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in rows.items())
    return f'<table class="meta">{cells}</table>'


def document(title: str, body: str) -> str:
    """A complete HTML page with the shared style."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
            f"<body>{body}</body>\n</html>\n")


def write_together(paths: dict[str, Path], contents: dict[str, str]) -> None:
    """Write every file or none: each to a temporary sibling, then all renamed into place.

    Everything is computed before the first byte is written, so a failure leaves no
    partial report (and an earlier report in the folder untouched).
    """
    staged = {}
    try:
        for name, path in paths.items():
            staged[name] = path.with_name(f".{path.name}.partial")
            staged[name].write_text(contents[name], encoding="utf-8")
        for name, path in paths.items():
            os.replace(staged[name], path)
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
