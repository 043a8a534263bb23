# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.cloudops.leveller.plugins.module_utils._playbook_vars import unknown_vars


class FilterModule(object):
    """Variable checks of the collection's playbooks."""

    def filters(self):
        return {'unknown_vars': unknown_vars}
