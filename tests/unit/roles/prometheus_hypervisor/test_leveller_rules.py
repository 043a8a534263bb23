# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Prometheus rules the role ships: promtool's own unit tests (leveller_rules_test.yml), and the
run rules read only metrics that run_metrics writes."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.cloudops.leveller.plugins.module_utils import _run_metrics as rm

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, '..', '..', '..', '..', 'roles', 'prometheus_hypervisor', 'files', 'leveller_rules.yml')


def promtool():
    path = shutil.which('promtool')
    if not path:
        pytest.fail('promtool is missing: install the Debian package prometheus (make deps does)')
    return path


def rules():
    with open(RULES) as handle:
        return [rule for group in yaml.safe_load(handle)['groups'] for rule in group['rules']]


def test_promtool_checks_the_rules_file():
    proc = subprocess.run([promtool(), 'check', 'rules', RULES], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_unit_tests_of_the_rules_pass():
    proc = subprocess.run([promtool(), 'test', 'rules', 'leveller_rules_test.yml'], cwd=HERE,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and 'SUCCESS' in proc.stdout, proc.stdout + proc.stderr


def test_every_alert_says_what_to_do_and_is_tested():
    with open(os.path.join(HERE, 'leveller_rules_test.yml')) as handle:
        tested = set(case['alertname'] for test in yaml.safe_load(handle)['tests']
                     for case in test.get('alert_rule_test') or [] if case.get('exp_alerts'))
    alerts = [rule for rule in rules() if 'alert' in rule]
    wanted = {'LevellerRunFailed', 'LevellerMigrationUnresolved', 'LevellerNoSuccessfulRun'}
    assert set(rule['alert'] for rule in alerts) >= wanted
    for rule in alerts:
        if not rule['alert'].startswith('Leveller'):
            continue
        assert rule['labels']['severity'] in ('warning', 'critical')
        assert rule['annotations']['summary'] and len(rule['annotations']['description']) > 100
        assert rule['alert'] in tested, '%s has no promtool test that fires it' % rule['alert']


def test_the_run_rules_read_only_metrics_run_metrics_writes():
    written = set()
    for name, (kind, _help) in rm.FAMILIES.items():
        written.update([rm.PREFIX + name + s for s in ('_bucket', '_sum', '_count')] if kind == 'histogram'
                       else [rm.PREFIX + name])
    read = set(re.findall(r'\bcloudops_leveller_[a-z_]+', ' '.join(rule['expr'] for rule in rules())))
    assert read and read <= written, read - written
