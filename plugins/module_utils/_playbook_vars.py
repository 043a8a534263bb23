# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``leveller_`` variables the collection's playbooks know, and the ones given that they do not.

An operator who types ``-e leveller_max_move=5`` (for ``leveller_max_moves``) would otherwise
get the default without a word. The known names are every ``leveller_...`` name written in the
collection's playbooks, roles and extensions (variables, registered results, loop variables), so
one inventory or job template can hold the variables of every playbook without being refused.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import difflib
import os
import re

NAME = re.compile(r"\bleveller_[a-z0-9_]+\b")
FOLDERS = ("playbooks", "roles", "extensions")
SUFFIXES = (".yml", ".yaml", ".j2", ".json")

_KNOWN = {}


def collection_root():
    """The collection's top folder (this file is plugins/module_utils/_playbook_vars.py)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def known_names(root=None):
    """Every leveller_ name written in the collection's playbooks, roles and extensions."""
    root = root or collection_root()
    if root in _KNOWN:
        return _KNOWN[root]
    names = set()
    for folder in FOLDERS:
        for top, dirs, files in os.walk(os.path.join(root, folder)):
            dirs.sort()
            for name in sorted(files):
                if not name.endswith(SUFFIXES):
                    continue
                with open(os.path.join(top, name)) as handle:
                    names.update(NAME.findall(handle.read()))
    _KNOWN[root] = frozenset(names)
    return _KNOWN[root]


def unknown_vars(given, root=None):
    """The names of ``given`` (variable names) that start with leveller_ and no playbook knows,
    each as 'name (did you mean ...?)' when a known name is close."""
    known = known_names(root)
    out = []
    for name in sorted(set(given or ())):
        if not str(name).startswith("leveller_") or name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=2, cutoff=0.8)
        out.append("%s (did you mean %s?)" % (name, " or ".join(close)) if close else name)
    return out
