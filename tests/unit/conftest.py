# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hypothesis settings for the property tests.

On a developer's machine every run draws new examples, which is how new counter-examples are
found. In CI (``CI`` set) the draw is derandomized: the same examples every run, so a landing
depends on the code, not on the luck of the draw. A counter-example found locally is kept as a
regression test.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

try:
    from hypothesis import settings
except ImportError:  # the property tests then fail on their own import, naming hypothesis
    settings = None

if settings is not None:
    settings.register_profile('ci', derandomize=True, print_blob=True)
    if os.environ.get('CI'):
        settings.load_profile('ci')
