# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pictures and tables of replays: hosts on and hosts overloaded over the replayed time.

Pure, standard library only. Used by the PlanetLab benchmark (``make replay``) and by the
operator's backtest (``level_backtest``, ``backtest.yml``). A *run* is a dict with ``name`` and
the ``timeline`` of ``_replay.Replay.results`` (``t`` in seconds, ``active``, ``overloaded``,
``migrations`` per tick), and for the table the other figures of ``results``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from xml.sax.saxutils import escape

COLOURS = ("#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#546e7a")
PANELS = (("active", "hosts on"), ("overloaded", "hosts overloaded"), ("migrations", "migrations started"))


def _nice_top(value):
    """The smallest of 1, 2, 5 x 10^k at or above value (at least 1)."""
    if value <= 1:
        return 1
    top = 1
    while True:
        for factor in (1, 2, 5):
            if top * factor >= value:
                return top * factor
        top *= 10


def _points(ts, values, x0, width, span, y0, height, top, start):
    out = []
    for t, v in zip(ts, values):
        x = x0 + width * (t - start) / span
        y = y0 + height - height * min(v, top) / float(top)
        out.append("%.1f,%.1f" % (x, y))
    return " ".join(out)


def timeline_svg(runs, title, subtitle=None, panels=PANELS):
    """One SVG: a panel per figure of ``panels`` (default hosts on, hosts overloaded, migrations
    started per tick), a line per run, time in hours on the x axis."""
    width, left, right = 960, 60, 20
    panel_h, gap, head = 150, 46, 70
    plot_w = width - left - right
    series = [r for r in runs if (r.get("timeline") or {}).get("t")]
    height = head + len(panels) * (panel_h + gap) + 30
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="12">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="20" font-size="15" font-weight="bold">%s</text>' % escape(title)]
    if subtitle:
        out.append('<text x="10" y="38">%s</text>' % escape(subtitle))
    x = 10
    for k, run in enumerate(series):
        label = "— %s" % run.get("name", "run %d" % (k + 1))
        out.append('<text x="%d" y="58" fill="%s">%s</text>' % (x, COLOURS[k % len(COLOURS)], escape(label)))
        x += 7 * len(label) + 18
    if not series:
        out.append('<text x="10" y="%d">no tick was replayed</text>' % (head + 20))
        out.append("</svg>")
        return "\n".join(out)
    start = min(r["timeline"]["t"][0] for r in series)
    end = max(r["timeline"]["t"][-1] for r in series)
    span = (end - start) or 1.0
    hours = span / 3600.0
    tick_h = 1
    for candidate in (1, 2, 3, 6, 12, 24, 48, 168):
        tick_h = candidate
        if hours / candidate <= 12:
            break
    for p, (key, label) in enumerate(panels):
        y0 = head + p * (panel_h + gap)
        top = _nice_top(max([max(r["timeline"].get(key) or [0]) for r in series] + [1]))
        out.append('<text x="%d" y="%d" font-weight="bold">%s</text>' % (left, y0 - 6, escape(label)))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#bdbdbd"/>'
                   % (left, y0, plot_w, panel_h))
        for frac in (0.0, 0.5, 1.0):
            y = y0 + panel_h - panel_h * frac
            out.append('<text x="%d" y="%.1f" text-anchor="end" font-size="10">%s</text>'
                       % (left - 4, y + 3, ("%g" % (top * frac))))
            if 0 < frac < 1:
                out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eeeeee"/>'
                           % (left, left + plot_w, y, y))
        h = 0
        while h * 3600.0 <= span + 1e-6:
            xh = left + plot_w * h * 3600.0 / span
            out.append('<text x="%.1f" y="%d" text-anchor="middle" font-size="10">%gh</text>'
                       % (xh, y0 + panel_h + 13, h))
            h += tick_h
        for k, run in enumerate(series):
            line = run["timeline"]
            values = line.get(key)
            if not values:
                continue
            out.append('<polyline fill="none" stroke="%s" stroke-width="1.4" points="%s"><title>%s</title></polyline>'
                       % (COLOURS[k % len(COLOURS)],
                          _points(line["t"], values, left, plot_w, span, y0, panel_h, top, start),
                          escape("%s: %s" % (run.get("name", ""), label))))
    out.append("</svg>")
    return "\n".join(out)


# (key, label, format) of the comparison table
TABLE_ROWS = (
    ("migrations", "migrations", "%d"),
    ("gib_moved", "GiB moved", "%.1f"),
    ("max_migrations_per_vm", "most moves of one instance", "%d"),
    ("ping_pong", "moved back within the window", "%d"),
    ("active_hosts_mean", "hosts on (mean)", "%.1f"),
    ("overloaded_host_hours", "host-hours overloaded", "%.2f"),
    ("slatah", "SLATAH (overloaded / on time)", "%.5f"),
    ("pdm", "PDM (CPU lost to migrations)", "%.6f"),
    ("energy_kwh", "energy (kWh)", "%.1f"),
    ("refused_moves", "moves refused by the rules", "%d"),
    ("plan_seconds", "planner time (s)", "%.2f"),
)


def comparison_table(runs, rows=TABLE_ROWS):
    """A text table: one column per run (``name`` + the figures of ``Replay.results``)."""
    names = [str(r.get("name", "run %d" % (k + 1))) for k, r in enumerate(runs)]
    label_w = max(len(label) for _key, label, _fmt in rows)
    widths = [max(12, len(n)) for n in names]
    lines = ["%-*s  %s" % (label_w, "", "  ".join("%*s" % (w, n) for w, n in zip(widths, names)))]
    lines.append("-" * len(lines[0]))
    for key, label, fmt in rows:
        cells = []
        for w, run in zip(widths, runs):
            value = run.get(key)
            cells.append("%*s" % (w, "-" if value is None else fmt % value))
        lines.append("%-*s  %s" % (label_w, label, "  ".join(cells)))
    return "\n".join(lines)
