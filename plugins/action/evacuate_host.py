# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the evacuate_host module; on the controller, each line of its progress log is shown as it is written."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.cloudops.leveller.plugins.plugin_utils._progress_stream import ProgressAction


class ActionModule(ProgressAction):
    """See plugins/plugin_utils/_progress_stream.py and the execution guide (Progress in the job output)."""
