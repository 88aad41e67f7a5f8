"""HTML building blocks and the page shell of the report.

Every piece of text goes through :func:`esc` (``html.escape``) unless wrapped in :class:`Raw`,
which only this package's own markup uses; dataset text is never wrapped in :class:`Raw`.
The page is self-contained: inline CSS, one tiny inline script (its hash is the only script
the Content-Security-Policy allows), images as ``data:`` URIs, no network requests.

Examples
--------
>>> table(["a"], [["<b>"]])
'<table><thead><tr><th>a</th></tr></thead><tbody><tr><td>&lt;b&gt;</td></tr></tbody></table>'
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class Raw(str):
    """Markup built by this package: inserted as is, never escaped again."""


def esc(value: Any) -> str:
    """Escape any value for HTML text or attribute context (``Raw`` passes through)."""
    if isinstance(value, Raw):
        return value
    return html.escape(str(value), quote=True)


def truncate(text: str, n: int = 300) -> str:
    """Collapse whitespace and cut to ``n`` characters (ending with an ellipsis).

    >>> truncate("a  b\\n c", 4)
    'a b…'
    """
    t = " ".join(str(text).split())
    return t if len(t) <= n else t[: n - 1].rstrip() + "…"


def fmt_num(x: Any, digits: int = 3) -> str:
    """Integers with thousands separators, floats to ``digits`` significant digits."""
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:,.{digits}g}" if abs(x) < 1e6 else f"{x:,.0f}"
    return str(x)


def table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], *, id: str | None = None,
          cls: str | None = None, num_cols: Sequence[int] = ()) -> str:
    """A table; cells are escaped unless :class:`Raw`; ``num_cols`` are right-aligned."""
    attrs = (f' id="{esc(id)}"' if id else "") + (f' class="{esc(cls)}"' if cls else "")
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(c)}</td>' if j in num_cols else f"<td>{esc(c)}</td>"
            for j, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return Raw(f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def kv_table(items: Mapping[str, Any]) -> str:
    """A two-column key/value table."""
    rows = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in items.items())
    return Raw(f'<table class="kv"><tbody>{rows}</tbody></table>')


def figure(uri: str, alt: str, caption: str = "") -> str:
    """An ``<img>`` from a ``data:image/png`` URI, with an escaped caption."""
    if not uri.startswith("data:image/png;base64,"):
        raise ValueError("figures must be inline PNG data URIs")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return Raw(f'<figure><img src="{uri}" alt="{esc(alt)}">{cap}</figure>')


def para(text: Any) -> str:
    """A paragraph of escaped text (or :class:`Raw` markup)."""
    return Raw(f"<p>{esc(text)}</p>")


def section(id: str, title: str, *parts: str) -> str:
    """A ``<section>`` with an anchor, a heading and the given (already built) parts."""
    return Raw(f'<section id="{esc(id)}"><h2>{esc(title)}</h2>{"".join(parts)}</section>')


CSS = """
:root{--fg:#1f2933;--muted:#616e7c;--line:#d9e2ec;--bg:#fff;--alt:#f5f7fa;--core:#d1495b}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#243b53;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#bcccdc}
nav{position:sticky;top:0;background:#f0f4f8;border-bottom:1px solid var(--line);padding:6px 32px;z-index:1}
nav a{margin-right:16px;color:#334e68;text-decoration:none;font-weight:600}
main{max-width:1240px;margin:0 auto;padding:8px 32px 48px}
h2{border-bottom:2px solid var(--line);padding-bottom:4px;margin-top:32px}
h3{margin:20px 0 6px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:var(--alt);position:sticky;top:34px}
tbody tr:nth-child(even){background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.kv th{font-weight:600;color:var(--muted);white-space:nowrap}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:150px;background:var(--alt)}
.card b{display:block;font-size:22px}.card span{color:var(--muted)}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:0 32px}
figure{margin:8px 0 16px}figure img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:4px}
figcaption,.note{color:var(--muted);font-size:13px}
.ex{margin:0 0 3px;padding:1px 8px;border-left:3px solid var(--line);font-size:12.5px;line-height:1.35}
.ex.in{border-left-color:var(--core)}
.tag{display:inline-block;font-size:11px;padding:0 6px;border-radius:8px;background:var(--core);color:#fff}
#picks td,#clusters-table td{max-width:460px;overflow-wrap:anywhere}
#clusters-table td:last-child{max-width:none}
#q{font:inherit;padding:5px 10px;width:340px;border:1px solid #9fb3c8;border-radius:6px;margin:4px 12px 4px 0}
@media (max-width:900px){.grid{grid-template-columns:1fr}}
"""

#: The only script of the page: shows the search box and filters the picks table by text.
SCRIPT = (
    "(function(){var q=document.getElementById('q'),n=document.getElementById('qn');"
    "if(!q)return;q.hidden=false;"
    "var rows=document.querySelectorAll('#picks tbody tr');"
    "q.addEventListener('input',function(){var s=q.value.toLowerCase(),c=0;"
    "for(var i=0;i<rows.length;i++){var m=!s||rows[i].textContent.toLowerCase().indexOf(s)>=0;"
    "rows[i].hidden=!m;if(m)c++;}n.textContent=s?c+' of '+rows.length+' rows match':'';});})();"
)


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], sections: Sequence[str]) -> str:
    """The whole document: head with CSS and CSP, header, navigation, sections, script."""
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    links = "".join(f'<a href="#{esc(i)}">{esc(t)}</a>' for i, t in nav)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{links}</nav><main>{''.join(sections)}</main>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


__all__ = ["Raw", "esc", "figure", "fmt_num", "kv_table", "page", "para", "section", "table", "truncate"]
