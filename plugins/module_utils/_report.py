# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run reports: a before/after table a person can read at a glance, and the same as an SVG picture.

Pure functions over a plan (from level_plan) and, optionally, the result of live_migrate; and
the private folders and files that reports, progress logs and locks are written to.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat
from xml.sax.saxutils import escape

# Reports, progress logs and locks name a cloud's hosts and instances: owner only.
FILE_MODE = 0o600
DIR_MODE = 0o700


class UnsafePath(Exception):
    """A report, log or lock path that is a symlink: refused, with the path and the fix."""


def private_dir(path, create=True):
    """Check (and create, mode 0700) the folder of reports, logs or locks; return its path.

    A folder that is a symlink is refused: whoever can re-point it could have a run write
    its files (or take its lock) somewhere else.
    """
    if os.path.islink(path):
        raise UnsafePath('%s is a symlink (to %s): reports, logs and locks are not written through '
                         'symlinks; point the option at the real folder, or replace the link by a '
                         'folder' % (path, os.path.realpath(path)))
    if not os.path.isdir(path):
        if not create:
            raise UnsafePath('%s is not a folder' % path)
        os.makedirs(path, DIR_MODE)
        os.chmod(path, DIR_MODE)  # makedirs applies the umask
    return path


def open_private(path, flags=os.O_WRONLY | os.O_APPEND, create_dir=True):
    """A file descriptor on ``path``, mode 0600, in a folder that is not a symlink.

    The file itself may not be a symlink either (``O_NOFOLLOW``); an existing file left
    readable by others is narrowed to 0600.
    """
    private_dir(os.path.dirname(os.path.abspath(path)), create=create_dir)
    try:
        fd = os.open(path, flags | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0), FILE_MODE)
    except OSError:
        if os.path.islink(path):
            raise UnsafePath('%s is a symlink (to %s): reports, logs and locks are not written '
                             'through symlinks; remove the link (the run writes a new file)'
                             % (path, os.path.realpath(path)))
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePath('%s is not a regular file: point the option at a file' % path)
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, FILE_MODE)
    except Exception:
        os.close(fd)
        raise
    return fd


def prepare_private_file(path):
    """Create ``path`` 0600 (or narrow it) before another writer appends to it by name."""
    if path:
        os.close(open_private(path))


BAR = 20


def _moves_by_result(plan, result):
    """Return (done, failed) move lists. Without a result every planned move counts as done."""
    planned = list(plan.get('moves') or [])
    if not result:
        return planned, []
    # The executor reports what happened; the size of each move comes from the plan.
    size = dict((m.get('instance'), m.get('memory_mb')) for m in planned)
    done, failed = [], []
    for m in result.get('moves') or []:
        entry = dict(m)
        if entry.get('memory_mb') is None:
            entry['memory_mb'] = size.get(entry.get('instance'))
        (done if entry.get('result') == 'moved' else failed).append(entry)
    return done, failed


def _hosts(plan):
    before = (plan.get('before') or {}).get('hosts') or {}
    after = (plan.get('after') or {}).get('hosts') or {}
    return sorted(set(before) | set(after)), before, after


def _bar(value, top):
    if top <= 0:
        return ''
    n = int(round(BAR * min(value, top) / top))
    return '#' * n + '.' * (BAR - n)


def _fmt(x):
    return '-' if x is None else '%.2f' % x


def measured_figures(snapshot, plan):
    """The figures of a fresh snapshot scored as ``plan`` scores its own ``before``.

    Same weights, scope and host rules as the plan (its ``params``), so the result can stand
    beside the plan's ``before`` and ``after``: ``{hosts: {name: {score, cpu, memory, instances}},
    spread: {...}, taken_at}``. Used by the reports for "after, as measured".
    """
    # Imported here: the report filters load without the planner unless this one is used.
    from ansible_collections.cloudops.leveller.plugins.module_utils._constraints import Placement
    from ansible_collections.cloudops.leveller.plugins.module_utils._plan import snapshot_figures
    from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import from_dict

    snap = from_dict(snapshot)
    params = dict((plan or {}).get('params') or {})
    weights = (snap.sources or {}).get('weights') or {}
    wc = params.get('weight_cpu', weights.get('cpu', 1.0))
    wm = params.get('weight_memory', weights.get('memory', 1.0))
    placement = Placement(snap, {'scope': params.get('scope') or {}, 'cross_az': params.get('cross_az', False),
                                 'keep_aggregates': params.get('keep_aggregates', True)})
    for name in (plan or {}).get('drained_hosts') or []:
        # A drained host is out of the spread in the plan's figures: keep it out here too.
        if name in placement.hosts:
            placement.hosts[name].active = False
    figures = snapshot_figures(placement, 1.0 if wc is None else wc, 1.0 if wm is None else wm)
    figures['taken_at'] = snap.taken_at
    return figures


def _measured_hosts(measured):
    return ((measured or {}).get('hosts') or {}) if isinstance(measured, dict) else {}


def report_table(plan, result=None, measured=None):
    """A fixed-width before/after table, one row per host, then the spread figures.

    ``measured`` (see :func:`measured_figures`) adds the after as measured by a fresh snapshot.
    """
    names, before, after = _hosts(plan)
    seen = _measured_hosts(measured)
    names = sorted(set(names) | set(seen))
    done, failed = _moves_by_result(plan, result)
    incoming, outgoing = {}, {}
    for m in done:
        incoming[m['destination']] = incoming.get(m['destination'], 0) + 1
        outgoing[m['source']] = outgoing.get(m['source'], 0) + 1
    # Scale bars to at least 1.0 (a fully loaded resource), so near-idle hosts show short bars.
    top = max([h.get('score') or 0 for h in list(before.values()) + list(after.values()) + list(seen.values())]
              + [1.0])
    width = max([len(n) for n in names] + [4])
    lines = ['%-*s  %-5s %-*s   %-5s %-*s  %3s %3s  %s%s' % (
        width, 'host', 'score', BAR, 'before', 'after', BAR, '(planned)', 'in', 'out', 'instances',
        '   measured after' if measured else '')]
    for name in names:
        b, a = before.get(name, {}), after.get(name, {})
        line = '%-*s  %5s %s → %5s %s  %3d %3d  %s → %s' % (
            width, name, _fmt(b.get('score')), _bar(b.get('score') or 0, top), _fmt(a.get('score')),
            _bar(a.get('score') or 0, top), incoming.get(name, 0), outgoing.get(name, 0),
            b.get('instances', '-'), a.get('instances', '-'))
        if measured:
            m = seen.get(name, {})
            line += '   %5s %s  %s' % (_fmt(m.get('score')), _bar(m.get('score') or 0, top), m.get('instances', '-'))
        lines.append(line)
    sb = (plan.get('before') or {}).get('spread') or {}
    sa = (plan.get('after') or {}).get('spread') or {}
    gib = sum((m.get('memory_mb') or 0) for m in done) / 1024.0
    lines.append('')
    lines.append('spread max/min-1: %s → %s   std-dev: %s → %s   max: %s → %s  (planned)' % (
        _fmt(sb.get('ratio')), _fmt(sa.get('ratio')), _fmt(sb.get('stddev')), _fmt(sa.get('stddev')),
        _fmt(sb.get('max')), _fmt(sa.get('max'))))
    if measured:
        sm = (measured or {}).get('spread') or {}
        lines.append('spread max/min-1: %s → %s   std-dev: %s → %s   max: %s → %s  (measured at %s)' % (
            _fmt(sb.get('ratio')), _fmt(sm.get('ratio')), _fmt(sb.get('stddev')), _fmt(sm.get('stddev')),
            _fmt(sb.get('max')), _fmt(sm.get('max')), measured.get('taken_at') or 'the end'))
    lines.append('moves: %d planned, %d done, %d not done   GiB moved: %.1f' % (
        len(plan.get('moves') or []), len(done), len(failed), gib))
    for m in failed:
        lines.append('  not done: %s %s → %s: %s %s' % (
            m.get('name') or m.get('instance'), m.get('source'), m.get('destination'),
            m.get('result'), m.get('error') or ''))
    if isinstance(result, dict) and result.get('failed'):
        if 'moves' not in result and plan.get('moves'):
            lines.append('the run failed before it reported its moves: check each planned instance by hand')
        lines.append('run failed: %s' % ' '.join(str(result.get('msg') or 'no message').split())[:600])
    summary = plan.get('summary') or {}
    if not plan.get('moves'):
        reason = summary.get('reason') or 'nothing to do'
        lines.append(reason if reason.startswith('no move') else 'no move: %s' % reason)
    return '\n'.join(lines)


def report_svg(plan, result=None, title='cloudops.leveller run', measured=None):
    """Per-host load bars before (grey), after as planned (blue) and, with ``measured``, after as
    measured (orange), with the moves drawn as arrows."""
    names, before, after = _hosts(plan)
    seen = _measured_hosts(measured)
    names = sorted(set(names) | set(seen))
    done, failed = _moves_by_result(plan, result)
    top = max([h.get('score') or 0 for h in list(before.values()) + list(after.values()) + list(seen.values())]
              + [1.0])
    bars = ((before, '#9e9e9e', 'before'), (after, '#1e88e5', 'after (planned)'))
    if measured:
        bars += ((seen, '#fb8c00', 'after (measured)'),)
    col, gap, height, base = 28 * len(bars), 24, 220, 280
    width = max(640, 60 + len(names) * (col + gap))
    x_of = {}
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="12">' % (width, base + 110)]
    out.append('<rect width="100%" height="100%" fill="white"/>')
    out.append('<text x="10" y="20" font-size="15" font-weight="bold">%s</text>' % escape(title))
    sb = (plan.get('before') or {}).get('spread') or {}
    sa = (plan.get('after') or {}).get('spread') or {}
    measured_text = ''
    if measured:
        sm = measured.get('spread') or {}
        measured_text = ' (planned); measured %s, std-dev %s' % (_fmt(sm.get('ratio')), _fmt(sm.get('stddev')))
    out.append('<text x="10" y="40">spread max/min-1 %s → %s, std-dev %s → %s%s; %d moves done, %d not done'
               '</text>' % (_fmt(sb.get('ratio')), _fmt(sa.get('ratio')), _fmt(sb.get('stddev')),
                            _fmt(sa.get('stddev')), measured_text, len(done), len(failed)))
    bar_w = col / float(len(bars))
    for i, name in enumerate(names):
        x = 40 + i * (col + gap)
        x_of[name] = x + col / 2.0
        for j, (src, colour, label) in enumerate(bars):
            score = (src.get(name) or {}).get('score') or 0
            h = height * score / top
            out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s %.2f</title>'
                       '</rect>' % (x + j * bar_w, base - h, bar_w - 2, h, colour, escape(name), label, score))
            out.append('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.2f</text>'
                       % (x + j * bar_w + (bar_w - 2) / 2.0, base - h - 3, score))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x + col / 2.0, base + 16, escape(name)))
    for k, m in enumerate(done + failed):
        s, d = x_of.get(m.get('source')), x_of.get(m.get('destination'))
        if s is None or d is None:
            continue
        y = base + 30 + (k % 6) * 10
        colour = '#43a047' if k < len(done) else '#e53935'
        out.append('<path d="M%.1f %d Q %.1f %d %.1f %d" stroke="%s" fill="none" stroke-width="1.5" '
                   'marker-end="url(#arrow)"/>' % (s, base + 22, (s + d) / 2.0, y + 20, d, base + 22, colour))
    out.insert(2, '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="6" refY="3" orient="auto">'
                  '<path d="M0,0 L6,3 L0,6 z" fill="#555"/></marker></defs>')
    legend = [(colour, '■ ' + label) for _src, colour, label in bars]
    legend += [('#43a047', '→ move done'), ('#e53935', '→ not done')]
    x = 10
    for colour, text in legend:
        out.append('<text x="%d" y="%d" fill="%s">%s</text>' % (x, base + 100, colour, escape(text)))
        x += 8 * len(text) + 16
    out.append('</svg>')
    return '\n'.join(out)
