# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX survey specs of extensions/awx/surveys/, generated from the playbooks' variables.

    python3 scripts/awx_surveys.py --write     # regenerate extensions/awx/surveys/*.json
    python3 scripts/awx_surveys.py --check     # exit 1 and list every difference
    python3 scripts/awx_surveys.py --explain   # every variable: its question, or why it has none

One survey per playbook of playbooks/ (``<name>.json``). Its questions come from the playbook's
knobs, in playbook order: the play ``vars:`` entries, then the variables the playbook only reads
as ``leveller_... | default(<literal>)`` (monitoring.yml, restore.yml's ``leveller_relevel``).
A new commented variable gets its question without any change here.

How a question is made:

- Text: the comment lines right above the variable in its ``vars:`` block. A variable without
  comment of its own takes, in this order, DESCRIPTIONS below, the first paragraph of the
  module option it feeds (``option: "{{ variable ... }}"`` in a task or in ``module_defaults``;
  module and doc-fragment documentation, without its "Default ..." sentence, since the
  playbook's default is the one that counts), the comment of the group of variables it stands in
  (the comment above the run of uncommented variables it belongs to), else its name. A variable
  read only through ``default()`` takes the comment line that names it (monitoring.yml's list).
  The short label (``question_name``) is LABELS below, else the name made readable.
- Default: the playbook's literal value, so a job launched without touching the survey does
  what ``ansible-playbook`` without ``-e`` does.
- Type: integer and float from the literal; yes/no (``multiplechoice`` "false"/"true") for a
  boolean; ``multiplechoice`` for a string when CHOICES below or the fed module option lists
  choices (``on_failure``, ``storage``, ``placement``, ...; the module's list is the one the
  module enforces, so it is preferred to parsing "a, b or c" out of a comment); else ``text``. Bounds: BOUNDS below,
  else 0 .. 1,000,000 for numbers (AWX takes integer bounds only).

What AWX does with answers decides which variables get a question. Every survey answer is an
extra variable, the strongest there is, so an answer must never replace a working default with
something that breaks the play:

- Every question that has a default is required: AWX fills it in, and the answer can never be
  blank. Required text questions have ``min`` 1.
- An optional question (a text whose playbook default is ``""``) is made only when the playbook
  reads every use of the variable through ``default(..., true)``. AWX versions differ on what a
  blank optional answer becomes: an empty string (awx#9525), ``null`` (awx#16205), or nothing at
  all (awx#16289 stops adding empty optional answers); through ``default(..., true)`` all three
  mean the playbook's default. A variable read otherwise (``leveller_resume | length``: ``null``
  has no length) gets no question.
- A ``""`` variable the playbook requires (an ``assert`` that it is not empty, or "Required." in
  its comment: ``host``) is a required text question without default.
- A default that is a Jinja template (``leveller_cloud``, ``leveller_prometheus_url``,
  ``leveller_report_dir``, the PromQL queries that embed ``leveller_cpu_window``, ...) gets no
  question: a survey default is passed as a literal string, and AWX does not render Jinja in
  survey answers (ALLOW_JINJA_IN_EXTRA_VARS "template" applies to the job template's own extra
  variables only), so the computed default would be lost; blank or null does not mean the
  template either. Set these in the job template's extra variables, or through the credential
  (OpenStack credential, environment).
- Lists and mappings (``leveller_sources``, ``leveller_libvirt_uris``, ``leveller_bmcs``, the
  group template, ...) get no question: a survey answer is a string or a number, and a text
  answer would reach the playbook as one string, not a list or a mapping. They belong in the job
  template's extra variables (YAML), or in a credential for anything secret (``leveller_bmcs``).
- A yes/no answer arrives as the string "true" or "false"; a boolean gets a question only when
  the playbook reads it through ``| bool``, passes it to a boolean module option, or to a
  boolean play keyword (``become``), all of which read those strings right.
- IMPORTED below adds questions for variables of a playbook that this one imports (restore.yml
  runs balance.yml when ``leveller_relevel`` is true).

The unit test tests/unit/scripts/test_awx_surveys.py runs ``--check``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import ast
import json
import os
import re
import sys
from collections import OrderedDict

import yaml

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOKS = os.path.join(TOP, 'playbooks')
SURVEYS = os.path.join(TOP, 'extensions', 'awx', 'surveys')
MODULES = os.path.join(TOP, 'plugins', 'modules')
FRAGMENTS = os.path.join(TOP, 'plugins', 'doc_fragments')
NAMESPACE = 'cloudops.leveller'

# Short labels (question_name). A variable missing here is labelled from its name.
LABELS = {
    'host': 'Hypervisor',
    'leveller_bandwidth': 'Bandwidth cap per libvirt migration (MiB/s)',
    'leveller_become': 'Become root',
    'leveller_cooldown': 'Cooldown (s)',
    'leveller_cpu_window': 'CPU rate window',
    'leveller_disable_freed': 'Disable freed hosts',
    'leveller_disabled_reason': 'Disabled reason',
    'leveller_fenced': 'Host is fenced',
    'leveller_force_enable': 'Enable a host disabled by someone else',
    'leveller_freed_host_tasks': 'Freed-host task file',
    'leveller_group_cooldown': 'Cooldown after an action (s)',
    'leveller_group_increment': 'Members per step',
    'leveller_group_lock_timeout': 'Lock wait (s)',
    'leveller_group_max_size': 'Maximum size',
    'leveller_group_max_unavailable': 'Members replaced at a time',
    'leveller_group_member_label': 'Member label of the Prometheus series',
    'leveller_group_metrics_source': 'Metrics source',
    'leveller_group_min_size': 'Minimum size',
    'leveller_group_name': 'Group name',
    'leveller_group_placement': 'Placement',
    'leveller_group_query_cpu': 'CPU query (PromQL)',
    'leveller_group_query_disk_io': 'Disk I/O query (PromQL)',
    'leveller_group_query_memory': 'Memory query (PromQL)',
    'leveller_group_result_file': 'Result file',
    'leveller_group_sample_interval': 'Sample interval (s)',
    'leveller_group_scale_in_order': 'Scale-in order',
    'leveller_group_state': 'State',
    'leveller_group_window': 'Prometheus window (s)',
    'leveller_hypervisors_group': 'Hypervisors group',
    'leveller_max_down_fraction': 'Largest share of hosts down',
    'leveller_max_gib': 'Memory budget (GiB)',
    'leveller_max_hosts': 'Hosts to free',
    'leveller_max_load_after': 'Fill limit',
    'leveller_max_moves': 'Move budget',
    'leveller_max_parallel': 'Moves at once',
    'leveller_max_per_host': 'Moves at once per host',
    'leveller_migrate_stopped': 'Also move stopped instances',
    'leveller_min_diff': 'Minimum spread',
    'leveller_min_gain': 'Minimum gain per move',
    'leveller_min_gain_per_gib': 'Minimum gain per GiB',
    'leveller_min_load': 'Minimum load',
    'leveller_monitoring_ceilometer': 'Ceilometer polling',
    'leveller_monitoring_exporters': 'Exporters',
    'leveller_monitoring_rules': 'Prometheus rules',
    'leveller_monitoring_snmp': 'snmpd',
    'leveller_on_failure': 'On a failed move',
    'leveller_partial': 'Partial drain',
    'leveller_prometheus_group': 'Prometheus group',
    'leveller_prometheus_rules_dir': 'Prometheus rules directory',
    'leveller_query_memory': 'Memory query (PromQL)',
    'leveller_relevel': 'Level the load afterwards',
    'leveller_service_down_time': 'Nova service_down_time (s)',
    'leveller_storage': 'libvirt storage',
    'leveller_timeout': 'Timeout per move (s)',
    'leveller_use_empty_hosts': 'Use empty hosts',
    'leveller_wait_timeout': 'Drain timeout (s)',
    'leveller_weight_cpu': 'CPU weight',
    'leveller_weight_memory': 'Memory weight',
}

# Text for variables that have no comment of their own and feed no documented module option.
DESCRIPTIONS = {
    'leveller_cpu_window': 'Window of the CPU rate in the default node-exporter query (Prometheus duration, e.g. 5m).',
}

# Choices a string variable must be one of, when no module option documents them.
CHOICES = {}

# (min, max) of numbers (AWX wants integers, also for floats) and lengths of text answers.
BOUNDS = {
    'host': (1, 255),
    'leveller_bandwidth': (0, 100000),
    'leveller_cooldown': (0, 2592000),
    'leveller_group_cooldown': (0, 86400),
    'leveller_group_increment': (1, 100),
    'leveller_group_lock_timeout': (0, 86400),
    'leveller_group_max_size': (1, 1000),
    'leveller_group_max_unavailable': (1, 100),
    'leveller_group_min_size': (0, 1000),
    'leveller_group_name': (1, 63),
    'leveller_group_sample_interval': (1, 3600),
    'leveller_group_window': (10, 86400),
    'leveller_max_down_fraction': (0, 1),
    'leveller_max_gib': (0, 1000000),
    'leveller_max_hosts': (0, 1000),
    'leveller_max_load_after': (0, 1),
    'leveller_max_moves': (0, 10000),
    'leveller_max_parallel': (1, 64),
    'leveller_max_per_host': (1, 16),
    'leveller_min_diff': (0, 100),
    'leveller_min_gain': (0, 100),
    'leveller_min_gain_per_gib': (0, 1),
    'leveller_min_load': (0, 100),
    'leveller_service_down_time': (1, 86400),
    'leveller_timeout': (30, 86400),
    'leveller_wait_timeout': (0, 86400),
    'leveller_weight_cpu': (0, 100),
    'leveller_weight_memory': (0, 100),
}
NUMBER_BOUNDS = (0, 1000000)
TEXT_MAX = 1024

# Variables that are computed from others, not knobs: no question, and not listed as one.
DERIVED = {
    'leveller_plain_libvirt': 'derived from leveller_sources',
}

# Variables that get no question whatever their value, and why.
SKIP = {
    'leveller_bmcs': 'BMC addresses and passwords: give them from a vault or an AWX credential, never as a survey answer',
}

# Questions for variables of an imported playbook: {playbook: (imported playbook, [variables])}.
IMPORTED = {
    'restore': ('balance', ['leveller_max_moves', 'leveller_max_gib']),
}

BOOL_KEYWORDS = ('become', 'gather_facts', 'check_mode', 'diff', 'no_log', 'ignore_errors', 'any_errors_fatal')
TASK_LISTS = ('tasks', 'pre_tasks', 'post_tasks', 'handlers', 'block', 'rescue', 'always')
NAME_RE = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
MARKUP_RE = re.compile(r'(RV|[OVCMIBEUPL])\(')


class SurveyError(Exception):
    """The playbooks and the tables here disagree (a default outside its bounds or choices)."""


# ------------------------------------------------------------------------------ reading
def _indent(line):
    return len(line) - len(line.lstrip(' '))


def vars_comments(lines):
    """{name: (own comment or None, group comment or None)} of the play-level ``vars:`` entries."""
    found = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() != 'vars:' or _indent(line) != 2:
            i += 1
            continue
        i += 1
        entry_indent = None
        pending, group = [], None
        while i < len(lines):
            line = lines[i]
            text = line.strip()
            if not text:
                pending, group = [], None
                i += 1
                continue
            indent = _indent(line)
            if entry_indent is None:
                entry_indent = indent
                if entry_indent <= 2:
                    break
            if indent < entry_indent:
                break
            if indent == entry_indent:
                if text.startswith('#'):
                    pending.append(text[1:].strip())
                else:
                    name = text.split(':', 1)[0].strip()
                    own = ' '.join(p for p in pending if p) or None
                    if own:
                        group = own
                    pending = []
                    if NAME_RE.match(name) and name not in found:
                        found[name] = (own, group)
            i += 1
    return found


def mention_comment(lines, name):
    """The comment that describes ``name`` outside a vars block.

    A line of a knob list that starts with the name (monitoring.yml's header: the rest of the
    line and its indented continuation lines, without the ``[default]``), else the last comment
    line naming it that is not an ``ansible-playbook`` example (restore.yml's re-level note).
    """
    word = re.compile(r'\b%s\b' % re.escape(name))
    other = None
    for i, line in enumerate(lines):
        text = line.strip()
        if not text.startswith('#') or not word.search(text):
            continue
        body = text[1:].strip()
        if not body.startswith(name + ' '):
            if 'ansible-playbook' not in body:
                other = body
            continue
        parts = [body[len(name):].strip()]
        for more in lines[i + 1:]:
            more = more.strip()
            if re.match(r'^#\s{5,}\S', more):
                parts.append(more[1:].strip())
            else:
                break
        described = ' '.join(parts)
        described = re.sub(r'\s*\[[^\]]*\]\s*$', '', described)
        return re.sub(r'\s+\[[^\]]*\]\s+', ' ', described).strip()
    return other


def walk_tasks(node):
    """Every task dict of a play (blocks included)."""
    for key in TASK_LISTS:
        for task in node.get(key) or []:
            if isinstance(task, dict):
                yield task
                yield from walk_tasks(task)


def _module_name(key):
    if key.startswith(NAMESPACE + '.'):
        return key[len(NAMESPACE) + 1:]
    return None


def _first_name(value):
    if not isinstance(value, str):
        return None
    match = re.match(r'^\s*\{\{\s*([A-Za-z_][A-Za-z0-9_]*)', value)
    return match.group(1) if match else None


def option_feeds(plays):
    """{variable: [(module, option)]}: the collection's module options each variable is given to."""
    feeds = {}

    def note(module, options):
        for option, value in (options or {}).items():
            var = _first_name(value)
            if var:
                feeds.setdefault(var, []).append((module, option))

    for play in plays:
        for key, options in (play.get('module_defaults') or {}).items():
            module = _module_name(key)
            if module and isinstance(options, dict):
                note(module, options)
        for task in walk_tasks(play):
            for key, options in task.items():
                module = _module_name(key)
                if module and isinstance(options, dict):
                    note(module, options)
    return feeds


def keyword_uses(plays, keys):
    """Names given whole to a play or task keyword in ``keys`` (``become: "{{ var }}"``)."""
    names = set()
    for play in plays:
        nodes = [play] + list(walk_tasks(play))
        for node in nodes:
            for key in keys:
                var = _first_name(node.get(key))
                if var and re.match(r'^\s*\{\{\s*%s\s*(\|\s*default\([^()]*\)\s*)?\}\}\s*$' % var, node[key]):
                    names.add(var)
    return names


def registered(plays):
    names = set()
    for play in plays:
        for task in walk_tasks(play):
            if isinstance(task.get('register'), str):
                names.add(task['register'])
    return names


_DOCS = {}


def _doc_of(path, class_name=None):
    with open(path) as f:
        tree = ast.parse(f.read())
    body = tree.body
    if class_name:
        body = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
        body = body[0].body if body else []
    for node in body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == 'DOCUMENTATION' for t in node.targets):
            return yaml.safe_load(node.value.value) or {}
    return {}


def module_options(module):
    """The documented options of one of the collection's modules, doc fragments merged in."""
    if module in _DOCS:
        return _DOCS[module]
    path = os.path.join(MODULES, module + '.py')
    options = {}
    if os.path.exists(path):
        doc = _doc_of(path)
        for fragment in doc.get('extends_documentation_fragment') or []:
            if fragment.startswith(NAMESPACE + '.'):
                fpath = os.path.join(FRAGMENTS, fragment[len(NAMESPACE) + 1:] + '.py')
                if os.path.exists(fpath):
                    options.update(_doc_of(fpath, 'ModuleDocFragment').get('options') or {})
        options.update(doc.get('options') or {})
    _DOCS[module] = options
    return options


def plain(text):
    """Documentation markup to plain text: O(x) -> x, C(a (b)) -> a (b), L(text,url) -> text."""
    out, i = [], 0
    while i < len(text):
        match = MARKUP_RE.match(text, i)
        if match is None or (i > 0 and (text[i - 1].isalnum() or text[i - 1] == '_')):
            out.append(text[i])
            i += 1
            continue
        depth, j = 1, match.end()
        while j < len(text) and depth:
            depth += {'(': 1, ')': -1}.get(text[j], 0)
            j += 1
        if depth:
            out.append(text[i:])
            break
        marker, inner = match.group(1), plain(text[match.end():j - 1])
        if marker == 'L':
            inner = inner.split(',', maxsplit=1)[0]
        elif marker in ('O', 'RV') and '#' in inner:
            inner = inner.rsplit(':', maxsplit=1)[-1]
        out.append(inner)
        i = j
    return ''.join(out).strip()


class Knob(object):
    """One variable of a playbook and what the playbook says about it."""

    def __init__(self, name, value, own=None, group=None, origin='vars'):
        self.name = name
        self.value = value
        self.own = own
        self.group = group
        self.origin = origin          # 'vars', 'default' or 'imported:<playbook>'
        self.feeds = []               # [(module, option)]
        self.required = False
        self.null_safe = False
        self.bool_safe = False


class Playbook(object):
    """A playbook of playbooks/, read for its knobs."""

    def __init__(self, path):
        self.path = path
        self.stem = os.path.splitext(os.path.basename(path))[0]
        with open(path) as f:
            self.text = f.read()
        self.lines = self.text.splitlines()
        self.plays = [p for p in (yaml.safe_load(self.text) or []) if isinstance(p, dict)]
        self.code = '\n'.join(line for line in self.lines if not line.strip().startswith('#'))
        self.knobs = self._knobs()

    def header(self):
        """The first paragraph of the playbook's leading comment."""
        parts = []
        for line in self.lines:
            text = line.strip()
            if text == '---' and not parts:
                continue
            if not text.startswith('#'):
                break
            body = text[1:].strip()
            if not body:
                if parts:
                    break
                continue
            parts.append(body)
        return ' '.join(parts)

    def imports(self):
        out = []
        for play in self.plays:
            for key in ('ansible.builtin.import_playbook', 'import_playbook'):
                if isinstance(play.get(key), str):
                    out.append(os.path.splitext(os.path.basename(play[key]))[0])
        return out

    def _knobs(self):
        comments = vars_comments(self.lines)
        knobs = OrderedDict()
        for play in self.plays:
            for name, value in (play.get('vars') or {}).items():
                if name not in knobs:
                    own, group = comments.get(name, (None, None))
                    knobs[name] = Knob(name, value, own, group)
        skip = registered(self.plays)
        for match in re.finditer(r'\b(leveller_[A-Za-z0-9_]+)\s*\|\s*default\(([^()]*)\)', self.code):
            name, arg = match.group(1), match.group(2).strip()
            if name in knobs or name in skip:
                continue
            try:
                value = yaml.safe_load(arg)
            except yaml.YAMLError:
                continue
            if arg in ('omit',) or isinstance(value, (list, dict)) or value is None:
                continue
            knobs[name] = Knob(name, value, own=mention_comment(self.lines, name), origin='default')
        feeds = option_feeds(self.plays)
        keywords = keyword_uses(self.plays, BOOL_KEYWORDS)
        for knob in knobs.values():
            knob.feeds = feeds.get(knob.name, [])
            knob.required = self._required(knob)
            knob.null_safe = self._uses_all(knob.name, r'\s*\|\s*default\([^()]*,\s*(true|True)\s*\)')
            knob.bool_safe = knob.name in keywords or self._bool_read(knob)
        return knobs

    def _uses(self, name):
        """Each use of ``name`` in the playbook's code, as the text that follows it."""
        definition = re.compile(r'^\s*%s\s*:' % re.escape(name))
        out = []
        for line in self.code.splitlines():
            if definition.match(line):
                continue
            for match in re.finditer(r'(?<![\w.])%s\b(?!\s*:)' % re.escape(name), line):
                out.append(line[match.end():])
        return out

    def _uses_all(self, name, follow):
        uses = self._uses(name)
        return bool(uses) and all(re.match(follow, rest) for rest in uses)

    def _bool_read(self, knob):
        """Every use reads a "true"/"false" string right: | bool, or a boolean module option."""
        options = [module_options(m).get(o, {}) for m, o in knob.feeds]
        bool_options = options and all(opt.get('type') == 'bool' for opt in options)
        for rest in self._uses(knob.name):
            if re.match(r'\s*(\|\s*default\([^()]*\)\s*)?\|\s*bool\b', rest):
                continue
            if bool_options and re.match(r'\s*\}\}', rest):
                continue
            return False
        return True

    def _required(self, knob):
        if knob.own and re.search(r'\bRequired\b', knob.own):
            return True
        asserted = re.compile(r'(?<![\w.])%s\s*\|\s*length\s*>\s*0' % re.escape(knob.name))
        for play in self.plays:
            for task in walk_tasks(play):
                for key in ('ansible.builtin.assert', 'assert'):
                    that = (task.get(key) or {}).get('that') if isinstance(task.get(key), dict) else None
                    checks = that if isinstance(that, list) else [that]
                    if any(isinstance(c, str) and asserted.search(c) for c in checks):
                        return True
        return False


# ------------------------------------------------------------------------------ questions
def label(name):
    if name in LABELS:
        return LABELS[name]
    words = name[len('leveller_'):] if name.startswith('leveller_') else name
    words = words.replace('_', ' ').strip()
    return words[:1].upper() + words[1:]


def description(knob):
    if knob.own:
        return knob.own
    if knob.name in DESCRIPTIONS:
        return DESCRIPTIONS[knob.name]
    for module, option in knob.feeds:
        doc = module_options(module).get(option, {}).get('description')
        if isinstance(doc, list):
            doc = doc[0] if doc else None
        if doc:
            # The module's own default is not the playbook's: its "Default ..." sentence goes.
            return re.sub(r'(^|\s)Default (?:[^.]|\.(?=\w))*\.(?=\s|$)', '', plain(doc)).strip()
    if knob.group:
        return knob.group
    return 'Playbook variable %s.' % knob.name


def choices(knob):
    if knob.name in CHOICES:
        return list(CHOICES[knob.name])
    for module, option in knob.feeds:
        listed = module_options(module).get(option, {}).get('choices')
        if listed:
            return [str(c) for c in listed]
    return None


def is_template(value):
    return isinstance(value, str) and ('{{' in value or '{%' in value)


def bounds(knob, fallback):
    low, high = BOUNDS.get(knob.name, fallback)
    if isinstance(knob.value, (int, float)) and not isinstance(knob.value, bool) and not low <= knob.value <= high:
        raise SurveyError('%s: default %r is outside its bounds %s..%s (BOUNDS in scripts/awx_surveys.py)'
                          % (knob.name, knob.value, low, high))
    return low, high


def question(knob, text=None):
    """(question dict, None) or (None, why there is no question)."""
    name, value = knob.name, knob.value
    if name in DERIVED:
        return None, DERIVED[name] + ', not a knob'
    if name in SKIP:
        return None, SKIP[name]
    q = OrderedDict([('question_name', label(name)), ('question_description', text or description(knob)),
                     ('required', True)])
    if isinstance(value, bool):
        if not knob.bool_safe:
            return None, ('a yes/no answer arrives as the string "true" or "false", and this playbook does not read '
                          'it through | bool or a boolean option')
        q.update(type='multiplechoice', variable=name, default=str(value).lower(), choices=['false', 'true'])
        return q, None
    if isinstance(value, (int, float)):
        low, high = bounds(knob, NUMBER_BOUNDS)
        q.update(type='integer' if isinstance(value, int) else 'float', variable=name, default=value, min=low, max=high)
        return q, None
    if isinstance(value, (list, dict)):
        return None, ('a %s: a survey answer is a string or a number, so it belongs in the job template\'s extra '
                      'variables' % ('list' if isinstance(value, list) else 'mapping'))
    if value is None:
        return None, 'no default value'
    if not isinstance(value, str):
        return None, 'a %s default' % type(value).__name__
    if is_template(value):
        return None, ('its default is a Jinja template, computed when the play runs: a survey default is a literal '
                      'and AWX does not render Jinja in survey answers')
    if value == '':
        if knob.required:
            q.update(type='text', variable=name, min=bounds(knob, (1, TEXT_MAX))[0], max=bounds(knob, (1, TEXT_MAX))[1])
            return q, None
        if knob.null_safe:
            q['required'] = False
            q.update(type='text', variable=name, min=0, max=TEXT_MAX)
            return q, None
        return None, ('optional with default "": a blank answer may arrive as "" or null depending on the AWX version, '
                      'and this playbook does not read it through default(..., true)')
    listed = choices(knob)
    if listed:
        if value not in listed:
            raise SurveyError('%s: default %r is not one of its choices %s' % (name, value, listed))
        q.update(type='multiplechoice', variable=name, default=value, choices=listed)
        return q, None
    low, high = bounds(knob, (1, TEXT_MAX))
    q.update(type='text', variable=name, default=value, min=max(low, 1), max=high)
    return q, None


def build(stem, books):
    """(survey, [(variable, why no question)]) of playbook ``stem``."""
    book = books[stem]
    spec, skipped = [], []
    for knob in book.knobs.values():
        q, why = question(knob)
        if q is None:
            skipped.append((knob.name, why))
        else:
            spec.append(q)
    if stem in IMPORTED:
        other, names = IMPORTED[stem]
        for name in names:
            knob = books[other].knobs.get(name)
            if knob is None:
                raise SurveyError('%s: IMPORTED names %s, which %s.yml does not define' % (stem, name, other))
            if name in book.knobs or other not in book.imports():
                raise SurveyError('%s: IMPORTED %s from %s.yml, which this playbook does not import or defines itself'
                                  % (stem, name, other))
            q, why = question(knob, text='For the %s.yml pass: %s' % (other, description(knob)))
            if q is not None:
                spec.append(q)
    asked = set(q['variable'] for q in spec)
    extra = [name for name, _why in skipped if name not in asked and name not in DERIVED]
    text = '%s (playbook %s.%s).' % (book.header().rstrip('.'), NAMESPACE, stem)
    if extra:
        text += ' Not asked here (job template extra variables): %s.' % ', '.join(extra)
    survey = OrderedDict([('name', '%s %s' % (NAMESPACE, stem)), ('description', text), ('spec', spec)])
    return survey, skipped


def load_books():
    books = OrderedDict()
    for entry in sorted(os.listdir(PLAYBOOKS)):
        if entry.endswith('.yml'):
            book = Playbook(os.path.join(PLAYBOOKS, entry))
            books[book.stem] = book
    return books


def render(survey):
    return json.dumps(survey, indent=2, ensure_ascii=False) + '\n'


def generate():
    """{file name: JSON text} of every survey, and the explanations."""
    books = load_books()
    out, notes = OrderedDict(), OrderedDict()
    for stem in books:
        survey, skipped = build(stem, books)
        if survey['spec']:
            out[stem + '.json'] = render(survey)
        notes[stem] = (survey, skipped)
    return out, notes


# ------------------------------------------------------------------------------ check / write
def differences(wanted):
    """Every way extensions/awx/surveys/ differs from what the playbooks give, one line each."""
    lines = []
    present = sorted(f for f in os.listdir(SURVEYS) if f.endswith('.json')) if os.path.isdir(SURVEYS) else []
    for name in present:
        if name not in wanted:
            lines.append('%s: no playbook gives this survey (playbooks/%s.yml?)' % (name, name[:-5]))
    for name, text in wanted.items():
        path = os.path.join(SURVEYS, name)
        if not os.path.exists(path):
            lines.append('%s: missing' % name)
            continue
        with open(path) as f:
            have_text = f.read()
        if have_text == text:
            continue
        try:
            have = json.loads(have_text)
        except ValueError as exc:
            lines.append('%s: not JSON (%s)' % (name, exc))
            continue
        want = json.loads(text)
        before = len(lines)
        for key in ('name', 'description'):
            if have.get(key) != want.get(key):
                lines.append('%s: %s is %r, the playbook gives %r' % (name, key, have.get(key), want.get(key)))
        have_q = OrderedDict((q.get('variable'), q) for q in have.get('spec') or [])
        want_q = OrderedDict((q['variable'], q) for q in want['spec'])
        for var in have_q:
            if var not in want_q:
                lines.append('%s: question %s should not be there' % (name, var))
        for var, q in want_q.items():
            if var not in have_q:
                lines.append('%s: question %s is missing' % (name, var))
                continue
            for key in sorted(set(q) | set(have_q[var])):
                if have_q[var].get(key, '<unset>') != q.get(key, '<unset>'):
                    lines.append('%s: %s: %s is %r, the playbook gives %r' % (
                        name, var, key, have_q[var].get(key, '<unset>'), q.get(key, '<unset>')))
        if [v for v in have_q if v in want_q] != [v for v in want_q if v in have_q]:
            lines.append('%s: the questions are not in playbook order' % name)
        if len(lines) == before:
            lines.append('%s: formatting differs from the generated file' % name)
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument('--write', action='store_true', help='regenerate extensions/awx/surveys/*.json')
    mode.add_argument('--check', action='store_true', help='exit 1 listing every difference')
    mode.add_argument('--explain', action='store_true', help='every variable: its question or why it has none')
    args = parser.parse_args(argv)
    try:
        wanted, notes = generate()
    except SurveyError as exc:
        print('awx_surveys: %s' % exc, file=sys.stderr)
        return 2
    if args.explain:
        for stem, (survey, skipped) in notes.items():
            print('%s.yml -> %s' % (stem, '%s.json' % stem if survey['spec'] else 'no survey'))
            for q in survey['spec']:
                print('  %-36s %-14s %s' % (q['variable'], q['type'], 'required' if q['required'] else 'optional'))
            for name, why in skipped:
                print('  %-36s %-14s %s' % (name, '-', why))
        return 0
    if args.check:
        lines = differences(wanted)
        for line in lines:
            print(line)
        if lines:
            print('%d difference(s) between the playbooks and extensions/awx/surveys/; run '
                  'python3 scripts/awx_surveys.py --write' % len(lines))
            return 1
        print('extensions/awx/surveys/: %d surveys match the playbooks' % len(wanted))
        return 0
    if not os.path.isdir(SURVEYS):
        os.makedirs(SURVEYS)
    for name in sorted(os.listdir(SURVEYS)):
        if name.endswith('.json') and name not in wanted:
            os.remove(os.path.join(SURVEYS, name))
            print('removed %s' % name)
    for name, text in wanted.items():
        path = os.path.join(SURVEYS, name)
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            with open(path, 'w') as f:
                f.write(text)
            print('%s %s' % ('updated' if old is not None else 'wrote', name))
    return 0


if __name__ == '__main__':
    sys.exit(main())
