# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.cloudops.leveller.plugins.module_utils._report import (
    measured_figures, report_svg, report_table)


class FilterModule(object):
    """Run report filters."""

    def filters(self):
        return {
            'report_table': report_table,
            'report_svg': report_svg,
            'measured_figures': measured_figures,
        }
