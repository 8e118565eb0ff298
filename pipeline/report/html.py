"""One static page: inline CSS, relative links to files beside it, no script, no network."""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from pipeline.progress import format_duration

FAILURE_CLASS = {"failed_decode": "decode", "failed_io": "missing or unreadable input", "failed_nan": "non-finite",
                 "failed_oom": "out of memory", "skipped_too_large": "too large", "failed_error": "other error"}

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2430;background:#f6f7f9}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #d5d9e0}
table{border-collapse:collapse}td,th{padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{color:#5a6472;font-weight:500}code{font:12px ui-monospace,monospace;background:#eceef2;padding:1px 4px}
.counts{display:flex;gap:12px;flex-wrap:wrap}.count{background:#fff;border:1px solid #d5d9e0;
border-radius:6px;padding:8px 14px;min-width:90px}.count b{display:block;font-size:22px}
.ok b{color:#23824a}.failed b{color:#b3261e}.pending b{color:#8a6d00}
.plots img{background:#fff;border:1px solid #d5d9e0;margin:0 8px 8px 0;max-width:100%}
.sheet{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:10px}
.card{background:#fff;border:1px solid #d5d9e0;border-radius:6px;padding:8px}
.card .imgs{display:flex;gap:4px}.card figure{margin:0;flex:1;text-align:center}
.card img{width:100%;height:100px;object-fit:contain;background:#eceef2;image-rendering:pixelated}
.card figcaption{font-size:11px;color:#5a6472}.missing{height:100px;display:flex;align-items:center;
justify-content:center;background:#eceef2;font-size:11px;color:#5a6472}
.meta{font-size:12px;margin-top:4px}.fail{background:#fff;border-left:4px solid #b3261e;padding:6px 10px;
margin-bottom:8px}.grids img{max-width:100%;border:1px solid #d5d9e0;background:#fff}
"""


def _when(t) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if t else "-"


def _num(v) -> str:
    return "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def _img(rel: str | None, alt: str, caption: str, link: str | None = None) -> str:
    if rel is None:
        return f'<figure><div class="missing">{escape(alt)}</div><figcaption>{escape(caption)}</figcaption></figure>'
    img = f'<img src="{escape(rel)}" alt="{escape(alt)}">'
    if link:
        img = f'<a href="{escape(link)}">{img}</a>'
    return f"<figure>{img}<figcaption>{escape(caption)}</figcaption></figure>"


def header(info: dict) -> str:
    f = info["figures"]
    launches = info["launches"]
    rows = [
        ("run", f"<code>{escape(info['run'])}</code> ({escape(str(f['task']))})"),
        ("command", "<br>".join(f"<code>{escape(l['command'])}</code>" for l in launches[-3:]) or "not recorded"),
        ("config", escape(info["config_line"])),
        ("weights digest", f"<code>{escape(str(info['weights_digest']))}</code>"),
        ("started", _when(f["started_at"])),
        ("ended", _when(f["ended_at"]) if f["complete"] else f"live (last sample {_when(f['last_finished_at'])})"),
        ("devices", escape(info["devices_line"]) or "-"),
        ("throughput", f"{_num(f['images_per_hour_overall'])} images/hour overall, "
                       f"{_num(f['images_per_hour_recent'])} recent"),
        ("seconds per image", "; ".join(f"{escape(d)}: mean {s['mean']} s, median {s['median']} s "
                                        f"({s['samples']} samples)" for d, s in f["seconds_per_image"].items()) or "-"),
    ]
    if not f["complete"]:
        rows.append(("ETA", f"{format_duration(f['eta_seconds'])} ({f['active_leases']} shards in progress, "
                            f"{f['stale_leases']} stale leases)"))
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    counts = "".join(f'<div class="count {cls}"><b>{f[cls]}</b>{cls}</div>'
                     for cls in ("planned", "ok", "failed", "pending"))
    counts += f'<div class="count"><b>{f["shards_committed"]}/{f["shards_total"]}</b>shards committed</div>'
    return f"<table>{table}</table><h2>Counts</h2><div class=\"counts\">{counts}</div>"


def failures_section(groups: dict[str, list[dict]], failed_txt: str | None) -> str:
    if not groups:
        return "<h2>Failures</h2><p>none</p>"
    parts = ["<h2>Failures</h2>"]
    if failed_txt:
        parts.append(f'<p><a href="{failed_txt}">{failed_txt}</a>: the input of every failed sample, one per '
                     f"line, to use as DATA (or rerun with <code>--retry-failed</code>).</p>")
    for status, rows in groups.items():
        label = FAILURE_CLASS.get(status, status)
        items = "".join(f"<tr><td><code>{escape(r['key'])}</code></td><td>{escape(str(r.get('source') or ''))}</td>"
                        f"<td>{escape(str(r.get('error') or ''))}</td></tr>" for r in rows[:200])
        more = f"<p>... and {len(rows) - 200} more</p>" if len(rows) > 200 else ""
        parts.append(f'<div class="fail"><b>{escape(label)}</b> <code>{escape(status)}</code>: {len(rows)} '
                     f"sample(s)<table><tr><th>key</th><th>input</th><th>message</th></tr>{items}</table>{more}</div>")
    return "".join(parts)


def contact_sheet(cards: list[dict], n_ok: int, seed: int) -> str:
    if not cards:
        return "<h2>Contact sheet</h2><p>no committed ok samples yet</p>"
    html = [f"<h2>Contact sheet</h2><p>{len(cards)} of {n_ok} committed ok samples, chosen by seed {seed} "
            f"(content | style | output; click an output for the full image)</p><div class=\"sheet\">"]
    for c in cards:
        figs = [_img(c["content"], "no content" if c["content_path"] is None else "content unreadable", "content"),
                _img(c["style"], "no style" if c["style_path"] is None else "style unreadable", "style"),
                _img(c["thumb"], c["problem"] or "no image output", "output", c["full"])]
        look = c.get("structure"), c.get("style_match")
        meta = " · ".join(x for x in (f"loss {_num(c['loss'])}" if c["loss"] is not None else "",
                                      f"structure {_num(look[0])}" if look[0] is not None else "",
                                      f"style match {_num(look[1])}" if look[1] is not None else "",
                                      f"{_num(c['seconds'])} s" if c["seconds"] is not None else "",
                                      escape(c["device"])) if x)
        html.append(f'<div class="card"><div class="imgs">{"".join(figs)}</div>'
                    f'<div class="meta"><code>{escape(c["key"])}</code> {meta}<br>'
                    f'<span title="{escape(c["source_title"])}">{escape(c["source_name"])}</span></div></div>')
    html.append("</div>")
    return "".join(html)


def videos_section(videos: list[tuple]) -> str:
    """`nst video`: per finished clip, its warping error and a strip of consecutive frames."""
    if not videos:
        return ""
    html = ["<h2>Videos</h2><p>warping error (Lai et al. 2018): mean masked squared error between each output "
            "frame and the previous one warped by the input's optical flow (lower: steadier)</p>"]
    for meta, thumb, full in videos:
        facts = (f"{meta['frames']} frames at {escape(str(meta['fps']))} fps · warping error "
                 f"{_num(meta['warping_error'])} · reliable flow {_num(meta['reliable'])} · first frame "
                 f"{_num(meta['seconds_first'])} s, later {_num(meta['seconds_later'])} s")
        html.append(f'<h3>{escape(meta["video"])} <a href="{escape(meta["mp4_link"])}">mp4</a></h3><p>{facts}</p>'
                    f'<a href="{escape(full)}"><img src="{escape(thumb)}" alt="consecutive frames of '
                    f'{escape(meta["video"])}"></a>')
    return "".join(html)


def page(info: dict, plots: list[str], plot_notes: list[str], failures_html: str, grids: list[tuple],
         sheet_html: str, videos_html: str = "") -> str:
    title = f"nst report: {info['run']}"
    plot_html = "".join(f'<img src="{escape(p)}" alt="plot">' for p in plots)
    notes = "".join(f"<p>{escape(n)}</p>" for n in plot_notes)
    grid_html = ""
    if grids:
        grid_html = "<h2>Layer grids</h2><div class=\"grids\">" + "".join(
            f'<h3>{escape(name)}</h3><a href="{escape(full)}"><img src="{escape(thumb)}" alt="{escape(name)}"></a>'
            for name, thumb, full in grids) + "</div>"
    config = escape(json.dumps(info["config"], indent=1, sort_keys=True))
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<meta name=\"viewport\" content=\"width=device-width\"><style>{CSS}</style>"
            f"<link rel=\"icon\" href=\"data:,\"></head><body>"
            f"<h1>{escape(title)}</h1><p>made {_when(info['made_at'])} by nst {escape(info['version'])}</p>"
            f"{header(info)}<h2>Plots</h2><p>committed shards only (as are the failures and the contact sheet)</p>"
            f"<div class=\"plots\">{plot_html}</div>{notes}{failures_html}"
            f"{grid_html}{videos_html}{sheet_html}<h2>Config</h2><details><summary>effective configuration</summary>"
            f"<pre>{config}</pre></details></body></html>")
