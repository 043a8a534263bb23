# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX surveys are what scripts/awx_surveys.py makes of the playbooks, and ask only real knobs.

A playbook default changed without ``python3 scripts/awx_surveys.py --write`` fails here, naming
each difference.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import json
import os
import re
import shutil

import pytest
import yaml

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
SURVEYS = os.path.join(TOP, 'extensions', 'awx', 'surveys')
PLAYBOOKS = os.path.join(TOP, 'playbooks')
AWX_TYPES = ('text', 'textarea', 'password', 'integer', 'float', 'multiplechoice', 'multiselect')


def load_script():
    spec = importlib.util.spec_from_file_location('awx_surveys', os.path.join(TOP, 'scripts', 'awx_surveys.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def script():
    return load_script()


def survey_files():
    return sorted(f for f in os.listdir(SURVEYS) if f.endswith('.json'))


def playbook_knobs(stem):
    """Every variable a playbook defines in a play's vars, or reads as ``name | default(...)``."""
    path = os.path.join(PLAYBOOKS, stem + '.yml')
    with open(path) as f:
        text = f.read()
    plays = yaml.safe_load(text) or []
    names = set()
    imported = []
    for play in plays:
        names.update((play.get('vars') or {}).keys())
        for key in ('ansible.builtin.import_playbook', 'import_playbook'):
            if key in play:
                imported.append(os.path.splitext(os.path.basename(play[key]))[0])
    names.update(re.findall(r'\b([A-Za-z_][A-Za-z0-9_]*)\s*\|\s*default\(', text))
    return names, imported


def test_check_finds_no_difference(script, capsys):
    """The committed surveys are exactly what the generator makes of today's playbooks."""
    code = script.main(['--check'])
    out = capsys.readouterr().out
    assert code == 0, 'extensions/awx/surveys/ is out of date:\n' + out


def test_every_launchable_playbook_has_a_survey():
    stems = sorted(os.path.splitext(p)[0] for p in os.listdir(PLAYBOOKS) if p.endswith('.yml'))
    assert [os.path.splitext(f)[0] for f in survey_files()] == stems


@pytest.mark.parametrize('name', survey_files())
def test_every_survey_variable_is_a_variable_of_its_playbook(name):
    stem = os.path.splitext(name)[0]
    names, imported = playbook_knobs(stem)
    for other in imported:
        names.update(playbook_knobs(other)[0])
    with open(os.path.join(SURVEYS, name)) as f:
        survey = json.load(f)
    unknown = [q['variable'] for q in survey['spec'] if q['variable'] not in names]
    assert not unknown, '%s asks %s, which playbooks/%s.yml does not define' % (name, unknown, stem)


@pytest.mark.parametrize('name', survey_files())
def test_surveys_are_valid_awx_specs(name):
    """What the AWX API checks when a survey spec is saved, and what keeps answers harmless."""
    with open(os.path.join(SURVEYS, name)) as f:
        survey = json.load(f)
    assert isinstance(survey['name'], str) and isinstance(survey['description'], str)
    assert survey['spec'], 'AWX refuses an empty spec'
    seen = set()
    for q in survey['spec']:
        for key in ('question_name', 'question_description', 'variable', 'type'):
            assert isinstance(q[key], str) and q[key], (name, q)
        assert isinstance(q['required'], bool)
        assert q['type'] in AWX_TYPES
        assert q['variable'] not in seen, 'duplicate variable %s' % q['variable']
        seen.add(q['variable'])
        for key in ('min', 'max'):
            if key in q:
                assert isinstance(q[key], int) and not isinstance(q[key], bool), 'AWX wants integer bounds'
        default = q.get('default')
        if q['type'] == 'integer':
            assert isinstance(default, int) and q['min'] <= default <= q['max']
        elif q['type'] == 'float':
            assert isinstance(default, (int, float)) and q['min'] <= default <= q['max']
        elif q['type'] == 'multiplechoice':
            assert default in q['choices']
        elif q['type'] == 'text' and default is not None:
            assert q['min'] <= len(default) <= q['max']
        if default is None:
            # No default: either a required answer, or one the playbook reads through
            # default(..., true), so blank, "" or null all mean the playbook's default.
            assert q['required'] or q['min'] == 0
        else:
            assert q['required'], '%s: a question with a default is required, so it is never blank' % q['variable']
        assert default is None or '{{' not in str(default)


def test_old_drift_is_gone():
    """The issue's example: balance.json's min_diff and min_gain are the playbook's."""
    with open(os.path.join(PLAYBOOKS, 'balance.yml')) as f:
        play_vars = yaml.safe_load(f)[0]['vars']
    with open(os.path.join(SURVEYS, 'balance.json')) as f:
        spec = dict((q['variable'], q) for q in json.load(f)['spec'])
    for var in ('leveller_min_diff', 'leveller_min_gain', 'leveller_max_parallel', 'leveller_cooldown'):
        assert spec[var]['default'] == play_vars[var]


def test_required_host_has_no_default():
    for stem in ('evacuate', 'recover', 'restore'):
        with open(os.path.join(SURVEYS, stem + '.json')) as f:
            host = [q for q in json.load(f)['spec'] if q['variable'] == 'host'][0]
        assert host['required'] is True and 'default' not in host and host['min'] == 1


@pytest.fixture()
def tree(tmp_path, script):
    """A copy of the playbooks and module docs the script reads, with its paths pointed at it."""
    for sub in ('playbooks', os.path.join('plugins', 'modules'), os.path.join('plugins', 'doc_fragments')):
        shutil.copytree(os.path.join(TOP, sub), str(tmp_path / sub))
    surveys = tmp_path / 'extensions' / 'awx' / 'surveys'
    surveys.mkdir(parents=True)
    script.PLAYBOOKS = str(tmp_path / 'playbooks')
    script.SURVEYS = str(surveys)
    script.MODULES = str(tmp_path / 'plugins' / 'modules')
    script.FRAGMENTS = str(tmp_path / 'plugins' / 'doc_fragments')
    assert script.main(['--write']) == 0
    return tmp_path


def add_vars(tree, text, tasks=''):
    path = tree / 'playbooks' / 'balance.yml'
    body = path.read_text()
    anchor = '    leveller_cooldown: 3600\n'
    assert anchor in body
    body = body.replace(anchor, anchor + text)
    if tasks:
        body = body.rstrip('\n') + '\n' + tasks
    path.write_text(body)


def spec_of(tree, stem):
    with open(str(tree / 'extensions' / 'awx' / 'surveys' / (stem + '.json'))) as f:
        return dict((q['variable'], q) for q in json.load(f)['spec'])


def test_a_new_commented_variable_needs_no_code_change(script, tree, capsys):
    add_vars(tree, (
        '    # Seconds to wait after the moves before measuring again.\n'
        '    leveller_zz_example_delay: 30\n'
        '    # Pushgateway base URL the run pushes its metrics to; empty for none.\n'
        '    leveller_zz_example_url: ""\n'
        '    # Directory of node-exporter\'s textfile collector; empty for none.\n'
        '    leveller_zz_example_dir: ""\n'
    ), tasks=(
        '\n    - name: Push\n      ansible.builtin.debug:\n'
        '        msg: "{{ leveller_zz_example_url | default(omit, true) }}"\n'
        '\n    - name: Textfile\n      ansible.builtin.debug:\n        msg: done\n'
        '      when: leveller_zz_example_dir | length > 0\n'
    ))
    assert script.main(['--check']) == 1
    out = capsys.readouterr().out
    assert 'balance.json: question leveller_zz_example_delay is missing' in out
    assert 'balance.json: question leveller_zz_example_url is missing' in out
    assert script.main(['--write']) == 0
    spec = spec_of(tree, 'balance')
    delay = spec['leveller_zz_example_delay']
    assert (delay['type'], delay['default'], delay['required']) == ('integer', 30, True)
    assert delay['question_description'] == 'Seconds to wait after the moves before measuring again.'
    # read through default(omit, true): blank, "" and null all mean "none"
    url = spec['leveller_zz_example_url']
    assert (url['type'], url['required'], url['min']) == ('text', False, 0) and 'default' not in url
    # read with | length: null would break the play, so no question, and the survey says so
    assert 'leveller_zz_example_dir' not in spec
    with open(str(tree / 'extensions' / 'awx' / 'surveys' / 'balance.json')) as f:
        assert 'leveller_zz_example_dir' in json.load(f)['description']
    assert script.main(['--check']) == 0


def test_check_names_a_changed_default(script, tree, capsys):
    path = tree / 'playbooks' / 'balance.yml'
    path.write_text(path.read_text().replace('leveller_min_diff: 0.2', 'leveller_min_diff: 0.3'))
    assert script.main(['--check']) == 1
    out = capsys.readouterr().out
    assert "balance.json: leveller_min_diff: default is 0.2, the playbook gives 0.3" in out


def test_templates_lists_and_unsafe_booleans_get_no_question(script, tree):
    add_vars(tree, (
        '    # A computed default.\n'
        '    leveller_new_template: "{{ lookup(\'ansible.builtin.env\', \'HOME\') }}"\n'
        '    # A list.\n'
        '    leveller_new_list: [a, b]\n'
        '    # Compared as a string.\n'
        '    leveller_new_flag: false\n'
        '    # Read through | bool.\n'
        '    leveller_new_good_flag: false\n'
    ), tasks=(
        '\n    - name: Flag\n      ansible.builtin.debug:\n        msg: x\n'
        '      when: leveller_new_flag == true and leveller_new_good_flag | bool\n'
    ))
    assert script.main(['--write']) == 0
    spec = spec_of(tree, 'balance')
    for var in ('leveller_new_template', 'leveller_new_list', 'leveller_new_flag'):
        assert var not in spec
    assert spec['leveller_new_good_flag']['choices'] == ['false', 'true']


def test_a_default_outside_its_bounds_fails_loudly(script, tree, capsys):
    path = tree / 'playbooks' / 'balance.yml'
    path.write_text(path.read_text().replace('leveller_max_parallel: 2', 'leveller_max_parallel: 0'))
    assert script.main(['--check']) == 2
    assert 'leveller_max_parallel: default 0 is outside its bounds' in capsys.readouterr().err
