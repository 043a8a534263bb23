# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metrics of a levelling run for Prometheus: figures from the plan and the executor's result,
rendered in the text exposition format, pushed to a Pushgateway or written for node-exporter's
textfile collector.

Figures and rendering are pure functions. The counters (runs, moves) and the time of the last
success are carried over from what the target already holds: the Pushgateway group read back
through its API, or the previous file. Each run then replaces the whole group (or file), so a
figure the last run did not have (a measured spread, a bound gap) does not linger from an
older run.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import hashlib
import json
import math
import os
import re
import stat
import tempfile
import traceback

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.cloudops.leveller.plugins.module_utils import _schema as schema
from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerError, redact_url)
from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import SnapshotError, parse_time
from ansible_collections.cloudops.leveller.plugins.module_utils._sources.prometheus import url_credentials

PREFIX = 'cloudops_leveller_'
# Live migrations take from about a second (an idle instance) to half an hour (a busy one over a
# capped link); the executors' default deadline is 600 s.
MOVE_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
STATES = ('planned', 'done', 'failed', 'aborted', 'skipped', 'unresolved')
# Every result of the executors (_execute.RESULTS) and the state it counts under; a move not
# started (result null) is skipped, as the executors' totals count it. Check-mode results count
# under no state: nothing ran.
RESULT_STATE = {'moved': 'done', 'evacuated': 'done', 'failed': 'failed', 'aborted': 'aborted',
                'unresolved': 'unresolved', 'skipped': 'skipped', 'would move': None, 'would evacuate': None}
FAILED_STATES = ('failed', 'aborted', 'unresolved')
SPREAD_FIGURES = ('ratio', 'stddev', 'max')
# Keys of a plan's bound that measure a distance to a lower bound, and the goal each one is about.
BOUND_GAPS = (('gap', 'hosts_used'), ('cpu_max_gap', 'cpu_max'), ('memory_max_gap', 'memory_max'),
              ('makespan_gap_s', 'makespan_seconds'))
# The Pushgateway refuses a push whose HELP differs from the same metric's in another group: these
# texts are part of the interface, change them only with care.
FAMILIES = {
    'runs_total': ('counter', 'Runs of the playbook by result. run_metrics adds each run to the count it reads back '
                              'from the Pushgateway group or the previous file; it starts again from 0 when that is lost.'),
    'run_moves_total': ('counter', 'Moves of all runs of the playbook by state (planned, done, failed, aborted, '
                                   'skipped, unresolved), carried over like runs_total.'),
    'last_run_timestamp_seconds': ('gauge', 'Unix time the last run of the playbook ended.'),
    'last_run_success': ('gauge', '1 when the last run of the playbook succeeded, 0 when it failed.'),
    'last_success_timestamp_seconds': ('gauge', 'Unix time the last successful run of the playbook ended.'),
    'run_duration_seconds': ('gauge', 'Seconds from the snapshot the last run planned on to the end of that run.'),
    'moves': ('gauge', 'Moves of the last run: planned, and how they ended (done, failed, aborted, skipped, '
                       'unresolved).'),
    'moved_memory_bytes': ('gauge', 'RAM of the moves of the last run (what live migration copies): planned, and '
                                    'of the moves done.'),
    'spread_ratio': ('gauge', 'Busiest over idlest host score minus 1 over the active hosts: before the last run, '
                              'planned (predicted after it) and measured after it.'),
    'spread_stddev': ('gauge', 'Standard deviation of the host scores over the active hosts: before the last run, '
                               'planned and measured after it.'),
    'spread_max': ('gauge', 'Score of the busiest active host: before the last run, planned and measured after it.'),
    'plan_bound_gap': ('gauge', "Distance of the last run's plan from the strategy's lower bound, in the goal's "
                                'own unit (hosts, load fraction, seconds); 0 proves the plan optimal for that goal.'),
    'move_duration_seconds': ('histogram', 'Seconds each move of the last run took, from the API call to the end of '
                                           'its checks (replaced at every run: use it without rate()).'),
}
ORDER = ('runs_total', 'run_moves_total', 'last_run_timestamp_seconds', 'last_run_success',
         'last_success_timestamp_seconds', 'run_duration_seconds', 'moves', 'moved_memory_bytes',
         'spread_ratio', 'spread_stddev', 'spread_max', 'plan_bound_gap', 'move_duration_seconds')
LABEL_NAME = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*$')
# Label names the metrics use themselves (and job, which is the job option).
RESERVED_LABELS = ('job', 'playbook', 'result', 'state', 'when', 'goal', 'le')
PLAYBOOK = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$')
PATH_SAFE = re.compile(r'^[A-Za-z0-9_.-]+$')
TEXTFILE_MODE = 0o644  # node-exporter runs as another user; the file holds counts and figures only
MAX_TEXTFILE = 1024 * 1024


class MetricsError(LevellerError):
    """A target that could not be read or written, with the target named."""


# ---------------------------------------------------------------- input

def check_inputs(playbook, plan, result, measured, labels):
    """Raise ValueError naming the option (and the field) when an input cannot be used."""
    if not isinstance(playbook, str) or not PLAYBOOK.match(playbook):
        raise ValueError('playbook: %r is not a usable label: 1 to 128 letters, digits, "_", "." or "-", '
                         'starting with a letter or digit (it also names the textfile)' % (playbook,))
    if plan:
        try:
            schema.check(plan, schema.PLAN, 'plan')
        except schema.SchemaError as exc:
            raise ValueError('%s. Pass the "plan" that cloudops.leveller.level_plan returns' % exc)
    if measured:
        # measured_figures adds when the fresh snapshot was taken; the rest is a plan's "before".
        measured = dict(measured)
        taken_at = measured.pop('taken_at', None)
        if taken_at is not None and not isinstance(taken_at, str):
            raise ValueError('measured.taken_at: %r is not a time stamp (the snapshot\'s taken_at)' % (taken_at,))
        try:
            schema.check(measured, schema.PLAN['properties']['before'], 'measured')
        except schema.SchemaError as exc:
            raise ValueError('%s. measured has the form of a plan\'s "before": {hosts, spread}' % exc)
    _check_result(result or {})
    for name, value in (labels or {}).items():
        if not LABEL_NAME.match(str(name)) or str(name).startswith('__'):
            raise ValueError('labels: %r is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, '
                             'not starting with "__")' % (name,))
        if name in RESERVED_LABELS:
            raise ValueError('labels: %s is a label of the metrics themselves (reserved: %s); use %s'
                             % (name, ', '.join(RESERVED_LABELS),
                                'the job option' if name == 'job' else 'the playbook option' if name == 'playbook'
                                else 'another name'))
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value) == '':
            raise ValueError('labels.%s: expected a non-empty string, got %r' % (name, value))


def _check_result(result):
    """The executors' result keys run_metrics reads; a registered result's other keys are left alone."""
    if not isinstance(result, dict):
        raise ValueError('result: expected the registered result of live_migrate or evacuate_host, got %s'
                         % type(result).__name__)
    if 'failed' in result and not isinstance(result['failed'], bool):
        raise ValueError('result.failed: expected a boolean, got %r' % (result['failed'],))
    moves = result.get('moves')
    if moves is None:
        return
    if not isinstance(moves, list):
        raise ValueError('result.moves: expected a list of moves, got %s' % type(moves).__name__)
    for index, move in enumerate(moves):
        where = 'result.moves[%d]' % index
        if not isinstance(move, dict):
            raise ValueError('%s: expected a move (a mapping), got %r' % (where, move))
        if move.get('result') is not None and move['result'] not in RESULT_STATE:
            raise ValueError('%s.result: unknown result %r; known: %s'
                             % (where, move['result'], ', '.join(sorted(RESULT_STATE))))
        seconds = move.get('seconds')
        if seconds is not None and (not schema._is_number(seconds) or not math.isfinite(seconds) or seconds < 0):
            raise ValueError('%s.seconds: expected a number of seconds or null, got %r' % (where, seconds))


# ---------------------------------------------------------------- figures (pure)

def run_figures(plan, result, measured=None, failed=None, now=0.0):
    """What the metrics say about one run: success, moves by state, RAM moved, spreads, gaps, durations.

    ``failed`` overrides the outcome read from ``result`` (its ``failed`` flag, or any move that
    failed, was aborted or is unresolved). A task Ansible skipped counts as nothing run.
    """
    plan = plan or {}
    result = result or {}
    if result.get('skipped') and not result.get('moves'):
        result = {}
    planned = plan.get('moves') or []
    ran = result.get('moves') or []
    moves = dict.fromkeys(STATES, 0)
    moves['planned'] = len(planned) if plan else len(ran)
    size = dict((m['instance'], m.get('memory_mb') or 0) for m in planned)
    done_mb = 0
    seconds = []
    for move in ran:
        state = RESULT_STATE[move.get('result') or 'skipped']
        if state:
            moves[state] += 1
        if state == 'done':
            done_mb += size.get(move.get('instance'), 0)
        if move.get('seconds') is not None:
            seconds.append(float(move['seconds']))
    if failed is None:
        failed = bool(result.get('failed')) or any(moves[s] for s in FAILED_STATES)
    spread = dict((figure, {}) for figure in SPREAD_FIGURES)
    for when, figures in (('before', plan.get('before')), ('planned', plan.get('after')), ('measured', measured)):
        values = (figures or {}).get('spread') or {}
        for figure in SPREAD_FIGURES:
            if values.get(figure) is not None:
                spread[figure][when] = float(values[figure])
    bound = plan.get('bound') or {}
    gaps = dict((goal, float(bound[key])) for key, goal in BOUND_GAPS if bound.get(key) is not None)
    duration = None
    if plan.get('snapshot_taken_at'):
        try:
            duration = now - parse_time(plan['snapshot_taken_at'], 'plan.snapshot_taken_at').timestamp()
        except SnapshotError:  # the schema pattern let through a date that does not exist
            duration = None
        if duration is not None and duration < 0:
            duration = None  # a snapshot from the future: clocks disagree, no figure beats a wrong one
    return {
        'success': not failed,
        'finished_at': round(now, 3),
        'duration_seconds': None if duration is None else round(duration, 3),
        'moves': moves,
        'moved_memory_bytes': {'planned': sum(size.values()) * 2 ** 20, 'done': done_mb * 2 ** 20},
        'spread': spread,
        'bound_gaps': gaps,
        'move_seconds': seconds,
    }


def previous_state(samples):
    """The values carried over from the target: run counts, move counts and the last success.

    ``samples`` are (name, labels, value) of the target's own group or file; values that are
    not finite or negative are not counts and are left out.
    """
    runs = {'success': 0.0, 'failed': 0.0}
    moves = dict.fromkeys(STATES, 0.0)
    last_success = None
    for name, labels, value in samples:
        if not math.isfinite(value) or value < 0:
            continue
        if name == PREFIX + 'runs_total' and labels.get('result') in runs:
            runs[labels['result']] = value
        elif name == PREFIX + 'run_moves_total' and labels.get('state') in moves:
            moves[labels['state']] = value
        elif name == PREFIX + 'last_success_timestamp_seconds':
            last_success = value
    return {'runs': runs, 'moves': moves, 'last_success': last_success}


def render(figures, previous, labels):
    """The exposition text (format 0.0.4) of one run, with the counters carried over from ``previous``.

    ``labels`` are (name, value) pairs put on every sample, in order.
    """
    samples = dict((name, []) for name in ORDER)
    outcome = 'success' if figures['success'] else 'failed'
    for result in ('success', 'failed'):
        samples['runs_total'].append(((('result', result),), previous['runs'][result] + (result == outcome)))
    for state in STATES:
        samples['run_moves_total'].append(((('state', state),), previous['moves'][state] + figures['moves'][state]))
        samples['moves'].append(((('state', state),), figures['moves'][state]))
    samples['last_run_timestamp_seconds'].append(((), figures['finished_at']))
    samples['last_run_success'].append(((), 1 if figures['success'] else 0))
    last_success = figures['finished_at'] if figures['success'] else previous['last_success']
    if last_success is not None:
        samples['last_success_timestamp_seconds'].append(((), last_success))
    if figures['duration_seconds'] is not None:
        samples['run_duration_seconds'].append(((), figures['duration_seconds']))
    for state in ('planned', 'done'):
        samples['moved_memory_bytes'].append(((('state', state),), figures['moved_memory_bytes'][state]))
    for figure in SPREAD_FIGURES:
        for when in ('before', 'planned', 'measured'):
            if when in figures['spread'][figure]:
                samples['spread_' + figure].append(((('when', when),), figures['spread'][figure][when]))
    for goal in sorted(figures['bound_gaps']):
        samples['plan_bound_gap'].append(((('goal', goal),), figures['bound_gaps'][goal]))

    base = tuple(labels)
    lines = []
    for name in ORDER:
        kind, text = FAMILIES[name]
        if kind != 'histogram' and not samples[name]:
            continue
        lines.append('# HELP %s%s %s' % (PREFIX, name, text.replace('\\', '\\\\').replace('\n', '\\n')))
        lines.append('# TYPE %s%s %s' % (PREFIX, name, kind))
        if kind == 'histogram':
            lines.extend(_histogram(PREFIX + name, base, figures['move_seconds']))
        for extra, value in samples[name]:
            lines.append('%s%s%s %s' % (PREFIX, name, _labels(base + extra), _number(value)))
    return '\n'.join(lines) + '\n'


def _histogram(name, base, values):
    lines = []
    for bound in MOVE_BUCKETS + (float('inf'),):
        count = sum(1 for v in values if v <= bound)
        lines.append('%s_bucket%s %d' % (name, _labels(base + (('le', _number(float(bound))),)), count))
    lines.append('%s_sum%s %s' % (name, _labels(base), _number(round(sum(values), 3))))
    lines.append('%s_count%s %d' % (name, _labels(base), len(values)))
    return lines


def _labels(pairs):
    if not pairs:
        return ''
    return '{%s}' % ','.join('%s="%s"' % (k, str(v).replace('\\', '\\\\').replace('\n', '\\n').replace('"', '\\"'))
                             for k, v in pairs)


def _number(value):
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return 'NaN'
    if math.isinf(value):
        return '+Inf' if value > 0 else '-Inf'
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


# ---------------------------------------------------------------- reading back

SAMPLE_LINE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?[ \t]+(?P<value>\S+)'
                         r'(?:[ \t]+-?[0-9]+)?[ \t]*$')
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """(name, labels, value) of every sample line of an exposition text; other lines are skipped."""
    samples = []
    for line in (text or '').splitlines():
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        match = SAMPLE_LINE.match(line)
        if not match:
            continue
        try:
            value = float(match.group('value'))
        except ValueError:
            continue
        labels = dict((k, re.sub(r'\\(.)', lambda m: '\n' if m.group(1) == 'n' else m.group(1), v))
                      for k, v in LABEL_PAIR.findall(match.group('labels') or ''))
        samples.append((match.group('name'), labels, value))
    return samples


def group_samples(body, grouping):
    """(samples, found) of the group whose grouping key is ``grouping``, from the Pushgateway's
    ``GET /api/v1/metrics`` answer."""
    for group in (body or {}).get('data') or []:
        if not isinstance(group, dict) or group.get('labels') != grouping:
            continue
        samples = []
        for name, family in group.items():
            if not isinstance(family, dict):
                continue
            for metric in family.get('metrics') or []:
                if isinstance(metric, dict) and 'value' in metric:
                    try:
                        value = float(metric['value'])
                    except (TypeError, ValueError):
                        continue
                    samples.append((name, metric.get('labels') or {}, value))
        return samples, True
    return [], False


# ---------------------------------------------------------------- the Pushgateway

def pushgateway_base(url):
    """The Pushgateway base URL without credentials, as given (with its route prefix, if any)."""
    url = (url or '').strip()
    if not re.match(r'^https?://[^/]', url):
        raise ValueError('pushgateway_url: %r is not an http(s) URL; give the Pushgateway base URL, for '
                         'example http://pushgateway:9091' % redact_url(url))
    base = redact_url(url).rstrip('/')
    if re.search(r'/metrics(/|$)', base.split('//', 1)[1]):
        raise ValueError('pushgateway_url: give the base URL (%s without /metrics/...): the group is made of the '
                         'job option, the playbook and the labels option' % base.split('/metrics', 1)[0])
    return base


def group_path(job, grouping_labels):
    """``/metrics/job/<job>/<label>/<value>...``; values that are not plain path segments go base64url."""
    parts = ['metrics']
    for name, value in (('job', job),) + tuple(grouping_labels):
        value = str(value)
        if PATH_SAFE.match(value) and value not in ('.', '..'):
            parts.extend([name, value])
        else:
            parts.extend([name + '@base64', base64.urlsafe_b64encode(value.encode('utf-8')).decode('ascii')])
    return '/' + '/'.join(parts)


class Pushgateway(object):
    """One group of a Pushgateway: read back through its API, replaced with PUT."""

    def __init__(self, url, job, grouping_labels, timeout=10, validate_certs=True, ca_cert=None,
                 username=None, password=None, token=None, session=None):
        self.base = pushgateway_base(url)
        if not username and not token:
            username, password = url_credentials(url)
        self.grouping = dict([('job', job)] + [(k, str(v)) for k, v in grouping_labels])
        self.url = self.base + group_path(job, grouping_labels)
        self.timeout = timeout
        self.verify = ca_cert if (validate_certs and ca_cert) else bool(validate_certs)
        self.headers = {'Authorization': 'Bearer %s' % token} if token else {}
        self.auth = (username, password or '') if username else None
        self.session = session or requests.Session()

    def _call(self, method, url, what, **kw):
        headers = dict(self.headers, **kw.pop('headers', {}))
        try:
            resp = self.session.request(method, url, headers=headers, auth=self.auth, timeout=self.timeout,
                                        verify=self.verify, **kw)
        except requests.exceptions.SSLError as exc:
            raise MetricsError('Pushgateway at %s: TLS verification failed while %s (%s); set ca_cert, or '
                               'validate_certs=false' % (self.base, what, redact_url(str(exc))),
                               FailureClass.CONFIGURATION)
        except requests.exceptions.RequestException as exc:
            raise MetricsError('Pushgateway at %s is unreachable while %s: %s'
                               % (self.base, what, redact_url(str(exc))), FailureClass.UNREACHABLE)
        if resp.status_code in (401, 403):
            raise MetricsError('Pushgateway at %s refused %s (HTTP %s): check username/password or token'
                               % (self.base, what, resp.status_code), FailureClass.PERMISSION)
        if resp.status_code == 404:
            raise MetricsError('Pushgateway at %s answered HTTP 404 while %s: is pushgateway_url the base URL '
                               '(with its route prefix, if any), and the Pushgateway 1.0 or later?'
                               % (self.base, what), FailureClass.CONFIGURATION)
        if not 200 <= resp.status_code < 300:
            raise MetricsError('Pushgateway at %s answered HTTP %s while %s: %s'
                               % (self.base, resp.status_code, what, redact_url((resp.text or '').strip()[:300])),
                               FailureClass.UNREACHABLE if resp.status_code >= 500 else FailureClass.CONFIGURATION)
        return resp

    def read(self):
        """(samples, found) of this group, from ``GET /api/v1/metrics``."""
        resp = self._call('GET', self.base + '/api/v1/metrics', 'reading the previous values',
                          headers={'Accept': 'application/json'})
        try:
            body = json.loads(resp.text)
        except ValueError:
            raise MetricsError('Pushgateway at %s answered /api/v1/metrics without JSON: is pushgateway_url a '
                               'Pushgateway?' % self.base, FailureClass.CONFIGURATION)
        if not isinstance(body, dict) or body.get('status') != 'success':
            raise MetricsError('Pushgateway at %s could not list its metrics: %s'
                               % (self.base, redact_url(str(body)[:300])), FailureClass.UNREACHABLE)
        return group_samples(body, self.grouping)

    def push(self, text):
        """Replace the whole group with ``text`` (PUT)."""
        self._call('PUT', self.url, 'pushing the metrics', data=text.encode('utf-8'),
                   headers={'Content-Type': 'text/plain; version=0.0.4; charset=utf-8'})


# ---------------------------------------------------------------- the textfile

def textfile_path(directory, playbook, extra_labels):
    """``<dir>/cloudops_leveller_<playbook>.prom``; with extra labels a digest of them is added,
    so runs with other labels do not overwrite each other's file."""
    name = 'cloudops_leveller_%s' % playbook
    if extra_labels:
        key = json.dumps([[k, str(v)] for k, v in extra_labels], sort_keys=True)
        name += '.' + hashlib.sha256(key.encode('utf-8')).hexdigest()[:8]
    return os.path.join(directory, name + '.prom')


def _refuse_link(path):
    if os.path.islink(path):
        raise MetricsError('textfile %s is a symlink (to %s): metrics are not written through symlinks; remove '
                           'the link (the run writes a new file)' % (path, os.path.realpath(path)))


def read_textfile(path):
    """The text of the previous file, or '' when there is none."""
    _refuse_link(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    except OSError as exc:
        if not os.path.lexists(path):
            return ''
        raise MetricsError('textfile %s cannot be read: %s' % (path, exc.strerror or exc))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MetricsError('textfile %s is not a regular file: move it away' % path)
        data = os.read(fd, MAX_TEXTFILE + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_TEXTFILE:
        raise MetricsError('textfile %s is larger than %d bytes: it is not a file of run_metrics; move it away'
                           % (path, MAX_TEXTFILE))
    return data.decode('utf-8', 'replace')


class Textfile(object):
    """The textfile of one playbook (and labels) in node-exporter's folder: read back, replaced at once."""

    def __init__(self, directory, playbook, extra_labels):
        self.path = textfile_path(directory, playbook, extra_labels)

    def read(self):
        """(samples, found) of the previous file."""
        text = read_textfile(self.path)
        return parse_exposition(text), bool(text)

    def push(self, text):
        write_textfile(self.path, text)


def write_textfile(path, text):
    """Write ``text`` to ``path`` at once (a temporary file in the same folder, then a rename), mode 0644."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise MetricsError('textfile_dir %s is not a folder: give node-exporter\'s --collector.textfile.directory '
                           '(it must exist)' % directory)
    _refuse_link(path)
    # node-exporter reads *.prom only, so it never sees the temporary file
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        try:
            data = text.encode('utf-8')
            while data:
                data = data[os.write(fd, data):]
            os.fchmod(fd, TEXTFILE_MODE)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as exc:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise MetricsError('textfile %s cannot be written: %s' % (path, exc.strerror or exc))
