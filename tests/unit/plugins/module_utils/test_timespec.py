# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Times and durations as operators write them (at, history.start, history.end)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import given, strategies as st

from ansible_collections.cloudops.leveller.plugins.module_utils import _timespec as ts

NOW = 1795386000.0  # 2026-11-22T22:20:00Z


@pytest.mark.parametrize('value, expected', [
    ('2026-11-22T22:20:00Z', NOW),
    ('2026-11-22T23:20:00+01:00', NOW),
    ('2026-11-22T21:20:00-01:00', NOW),
    ('2026-11-22T23:20:00+0100', NOW),
    ('2026-11-22 22:20:00z', NOW),
    ('2026-11-22T22:20Z', NOW),
    ('2026-11-22T22:20:00.250Z', NOW + 0.25),
    ('1795386000', NOW),
    ('1795386000.5', NOW + 0.5),
    (1795386000, NOW),
    (1795386000.5, NOW + 0.5),
    ('now', NOW),
    (' NOW ', NOW),
    ('-6h', NOW - 6 * 3600),
    ('6h', NOW - 6 * 3600),
    ('-90m', NOW - 90 * 60),
    ('-2d', NOW - 2 * 86400),
    ('-3600s', NOW - 3600),
    ('-1w', NOW - 7 * 86400),
    ('-1.5h', NOW - 5400),
    ('1.5H', NOW - 5400),
])
def test_every_accepted_form_of_a_time(value, expected):
    assert ts.parse_instant(value, NOW) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize('value, words', [
    ('2026-11-22T22:20:00', 'add Z (UTC) or an offset'),
    ('2026-11-22', 'ISO 8601'),
    ('2026-13-01T00:00:00Z', 'not a valid time'),
    ('yesterday', 'ISO 8601'),
    ('-6', 'ISO 8601'),
    ('+6h', 'ISO 8601'),
    ('6x', 'ISO 8601'),
    ('', 'ISO 8601'),
    (None, 'ISO 8601'),
    (True, 'ISO 8601'),
    (-5, 'before 1970'),
    (float('nan'), 'ISO 8601'),
])
def test_anything_else_names_the_accepted_forms(value, words):
    with pytest.raises(ValueError) as err:
        ts.parse_instant(value, NOW)
    assert words in str(err.value)


def test_a_future_time_is_returned_as_it_is_for_the_caller_to_judge():
    assert ts.parse_instant('2099-01-01T00:00:00Z', NOW) > NOW


@pytest.mark.parametrize('value, seconds', [
    ('90m', 5400.0), ('1.5h', 5400.0), ('-6h', 21600.0), ('2d', 172800.0), ('1w', 604800.0),
    ('3600s', 3600.0), ('3600', 3600.0), (3600, 3600.0), (0.5, 0.5), ('.5m', 30.0),
])
def test_durations(value, seconds):
    assert ts.parse_duration(value) == seconds


@pytest.mark.parametrize('value', ['0h', '0', 'h', '6 hours', 'PT6H', '', None, True, '--6h'])
def test_bad_durations_name_the_forms(value):
    with pytest.raises(ValueError) as err:
        ts.parse_duration(value)
    assert '90m' in str(err.value)


@given(st.integers(0, 4102444800))
def test_iso_and_unix_agree(seconds):
    import datetime
    text = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    assert ts.parse_instant(text, NOW) == ts.parse_instant(str(seconds), NOW) == seconds
