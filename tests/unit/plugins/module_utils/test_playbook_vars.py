# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The playbooks refuse leveller_ variables that none of them knows (_playbook_vars)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import json
import os
import re

from ansible_collections.cloudops.leveller.plugins.module_utils import _playbook_vars as pv

ROOT = pv.collection_root()


def test_a_typo_is_named_with_the_names_it_is_close_to():
    assert pv.unknown_vars(["leveller_max_move", "leveller_max_moves", "other_var", "leveller_zzz_qqq"]) == [
        "leveller_max_move (did you mean leveller_max_moves or leveller_home_max_moves?)", "leveller_zzz_qqq"]
    assert pv.unknown_vars([]) == [] and pv.unknown_vars(None) == []


def test_known_names_come_from_the_files_of_a_collection(tmp_path):
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "p.yml").write_text("- hosts: all\n  vars:\n    leveller_alpha: 1\n"
                                                  "  tasks:\n    - debug: {msg: '{{ leveller_beta | default(2) }}'}\n")
    (tmp_path / "playbooks" / "notes.txt").write_text("leveller_gamma\n")
    assert pv.known_names(str(tmp_path)) == frozenset(["leveller_alpha", "leveller_beta"])
    assert pv.unknown_vars(["leveller_alpha", "leveller_gamma"], root=str(tmp_path)) == ["leveller_gamma"]


def test_every_survey_question_and_every_variable_the_tests_pass_is_known():
    given = set()
    for path in glob.glob(os.path.join(ROOT, "extensions", "awx", "surveys", "*.json")):
        with open(path) as handle:
            given.update(q["variable"] for q in json.load(handle)["spec"])
    for path in glob.glob(os.path.join(ROOT, "tests", "integration", "targets", "*", "runme.sh")) + [
            os.path.join(ROOT, "scripts", "demo.sh")]:
        with open(path) as handle:
            given.update(re.findall(r"-e '?\"?(leveller_[a-z0-9_]+)=", handle.read()))
    assert len(given) > 50
    assert pv.unknown_vars(sorted(given)) == []


def test_every_playbook_checks_first():
    for path in sorted(glob.glob(os.path.join(ROOT, "playbooks", "*.yml"))):
        with open(path) as handle:
            text = handle.read()
        first = text.split("  tasks:\n", 1)[1].lstrip().split("\n", 1)[0]
        assert "Refuse leveller_ variables" in first, path
        assert "cloudops.leveller.unknown_vars" in text, path
