# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Times and durations as operators write them: ``2026-12-06T10:00:00Z``, ``1765000000``, ``now``, ``-6h``.

Pure functions, no clock: the caller passes ``now``. A duration given where a time is expected
means that long before now, with or without the minus sign (``-6h`` and ``6h`` are both six hours
ago), since a time to come is never measured.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import math
import re

UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 7 * 86400}

INSTANT_FORMS = ('an ISO 8601 time with a zone (2026-12-06T10:00:00Z, 2026-12-06T11:00:00+01:00), '
                 'Unix seconds (1765000000), now, or a duration before now (-6h, -90m, -2d, -3600s, '
                 '-1w, -1.5h; the minus sign is optional)')
DURATION_FORMS = ('a number and a unit s, m, h, d or w (90m, 6h, 1.5h, 2d, 1w), or a number of '
                  'seconds (3600)')

_DURATION = re.compile(r'^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)([smhdw])$')
_UNIX = re.compile(r'^[0-9]+(?:\.[0-9]+)?$')
_ISO = re.compile(r'^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})'
                  r'(?::([0-9]{2})(?:[.,]([0-9]+))?)?'
                  r'(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2}))?$')


def _number(value):
    """A finite float from an int or float (never a bool), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def parse_duration(value):
    """Seconds (float, > 0) of a duration: ``90m``, ``1.5h``, ``2d``, ``1w``, ``3600s`` or ``3600``.

    A leading minus sign is accepted and ignored (``-6h`` is six hours). Raises ValueError naming
    the accepted forms.
    """
    number = _number(value)
    if number is None and isinstance(value, str):
        text = value.strip().lower()
        text = text[1:] if text.startswith('-') else text
        m = _DURATION.match(text)
        if m:
            number = float(m.group(1)) * UNITS[m.group(2)]
        elif _UNIX.match(text):
            number = float(text)
    if number is None:
        raise ValueError('%r is not a duration: write %s' % (value, DURATION_FORMS))
    number = abs(number)
    if number <= 0:
        raise ValueError('duration %r is zero: write a length above zero, as %s' % (value, DURATION_FORMS))
    return number


def parse_iso(text):
    """Unix time (float) of an ISO 8601 time with a zone; raises ValueError otherwise."""
    m = _ISO.match(text)
    if not m:
        raise ValueError('%r is not a time: write %s' % (text, INSTANT_FORMS))
    year, month, day, hour, minute = (int(g) for g in m.groups()[:5])
    second = int(m.group(6) or 0)
    fraction = float('0.' + m.group(7)) if m.group(7) else 0.0
    if m.group(8):
        offset = datetime.timedelta(0)
    elif m.group(9):
        offset = datetime.timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        if m.group(9) == '-':
            offset = -offset
    else:
        raise ValueError('%r has no time zone: add Z (UTC) or an offset such as +01:00' % text)
    try:
        when = datetime.datetime(year, month, day, hour, minute, second,
                                 tzinfo=datetime.timezone(offset))
    except ValueError as exc:
        raise ValueError('%r is not a valid time (%s): write %s' % (text, exc, INSTANT_FORMS))
    return (when - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds() + fraction


def parse_instant(value, now):
    """Unix time (float) of ``value``, with durations counted back from ``now`` (a Unix time).

    ``value`` is an ISO 8601 time with a zone, Unix seconds (a number or a digit string), ``now``,
    or a duration before now (``-6h``, ``90m``, ``-1.5d``: the minus sign is optional). Times in
    the future are returned as they are: the caller decides whether it accepts them. Raises
    ValueError naming the accepted forms.
    """
    number = _number(value)
    if number is not None:
        if number < 0:
            raise ValueError('%r is before 1970: write %s' % (value, INSTANT_FORMS))
        return number
    if not isinstance(value, str) or not value.strip():
        raise ValueError('%r is not a time: write %s' % (value, INSTANT_FORMS))
    text = value.strip()
    if text.lower() == 'now':
        return float(now)
    if _UNIX.match(text):
        return float(text)
    if _DURATION.match(text.lower()[1:] if text.startswith('-') else text.lower()):
        return float(now) - parse_duration(text)
    return parse_iso(text)
