# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replay's picture and table (_timeline)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import xml.dom.minidom

from ansible_collections.cloudops.leveller.plugins.module_utils import _timeline as timeline


def _run(name, active, overloaded, step=300.0):
    return {"name": name, "migrations": sum(overloaded), "energy_kwh": 1.5, "ping_pong": None,
            "timeline": {"t": [k * step for k in range(len(active))], "active": active,
                         "overloaded": overloaded, "migrations": overloaded}}


def test_svg_has_a_line_per_run_and_panel_and_scales_to_the_highest_value():
    runs = [_run("a <ours>", [10, 12, 9], [0, 1, 0]), _run("b", [40, 41, 43], [3, 0, 7])]
    svg = timeline.timeline_svg(runs, "title & co", "sub")
    doc = xml.dom.minidom.parseString(svg)  # well-formed, names escaped
    lines = doc.getElementsByTagName("polyline")
    assert len(lines) == 2 * len(timeline.PANELS)
    texts = [t.firstChild.data for t in doc.getElementsByTagName("text") if t.firstChild]
    assert "title & co" in texts and "— a <ours>" in texts
    assert "50" in texts        # hosts on: top 43 -> 50
    assert "10" in texts        # overloaded: top 7 -> 10
    # the first point of each line is at the left edge, the last at the right edge
    first = lines[0].getAttribute("points").split()
    assert first[0].startswith("60.0,") and first[-1].startswith("940.0,")


def test_svg_without_ticks_says_so():
    svg = timeline.timeline_svg([{"name": "x", "timeline": {"t": []}}], "t")
    assert "no tick was replayed" in svg
    xml.dom.minidom.parseString(svg)


def test_nice_top():
    assert [timeline._nice_top(v) for v in (0, 1, 1.5, 3, 7, 11, 460, 801)] == [1, 1, 2, 5, 10, 20, 500, 1000]


def test_comparison_table_has_a_column_per_run_and_dashes_for_missing_figures():
    table = timeline.comparison_table([_run("first", [1], [2]), _run("second-configuration", [1], [0])])
    lines = table.split("\n")
    assert lines[0].split() == ["first", "second-configuration"]
    row = [line for line in lines if line.startswith("migrations")][0]
    assert row.split()[-2:] == ["2", "0"]
    ping = [line for line in lines if line.startswith("moved back")][0]
    assert ping.split()[-2:] == ["-", "-"]
    assert [line for line in lines if line.startswith("GiB moved")][0].split()[-1] == "-"
