# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the move state machine (``_execute.Executor``) needs from a hypervisor platform.

The executor knows moves, waves, limits, deadlines, drift, reconciliation, aborts and the
journal; it knows nothing about HTTP, microversions or libvirt. It talks to one *backend*
through the small interface below: read, start, poll, abort, verify. Nova is the first
backend (:class:`NovaBackend`, over ``_nova.Nova``); plain libvirt hosts will be the second.

Every method raises on a failed call; an exception with a ``status`` attribute below 500 is
a refusal (the platform understood and said no), anything else is an *unclear* answer that
the executor reads back before it judges (a timeout, a reset, a 5xx).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.cloudops.leveller.plugins.module_utils._snapshot import HOME_METADATA_KEY

MIGRATION_TYPE = {'live': 'live-migration', 'cold': 'migration', 'evacuate': 'evacuation'}


class Backend(object):
    """The interface; each method's docstring is the contract a second backend must meet."""

    name = 'abstract'
    label = 'the platform'  # how messages name who migrates (Nova, libvirt)

    host_word = 'host'          # what a host is to the operator
    disabled_word = 'disabled'  # what a host that takes no instances is

    def how_to_check(self, instance):
        """The commands an operator runs to see where ``instance`` is and whether it still migrates."""
        return 'the instance %s and its migrations' % instance

    def host_down(self, role, host, service):
        """Why ``host`` (the move's ``role``: source or destination) cannot take part, as drift text."""
        return '%s %s is down' % (role, host)

    # -- read / verify ----------------------------------------------------------
    def read(self, instance):
        """The instance now, or None when it no longer exists: a dict with ``id``, ``name``,
        ``status`` (ACTIVE, SHUTOFF, ERROR, VERIFY_RESIZE...), ``task_state`` (None when idle),
        ``host``, ``power_state`` (Nova's numbers: 1 running, 3 paused, 4 shut down), ``locked``,
        ``metadata``, ``tags`` and ``flavor`` (vcpus, memory_mb, disk_gb). The executor's post-check
        (verify) compares this with what the move expects."""
        raise NotImplementedError

    def hosts(self):
        """Host name -> ``{status: enabled|disabled, state: up|down, forced_down, disabled_reason}``."""
        raise NotImplementedError

    def needs(self, instance):
        """What the instance holds on its host, by resource class (``VCPU``, ``MEMORY_MB``, ``DISK_GB``)."""
        raise NotImplementedError

    def room(self, host):
        """Per resource class of ``host``: ``{free, max_unit}`` (free after allocation ratios and reserved)."""
        raise NotImplementedError

    # -- start / poll / abort -------------------------------------------------------
    def migrations(self, instance, kind):
        """The instance's migration records of that kind (``live``, ``cold``, ``evacuate``), each with an
        ``id`` (records that existed before a start are told apart by id), ``status``, ``source`` and
        ``destination``. Polled while the move runs."""
        raise NotImplementedError

    def start(self, kind, instance, destination):
        """Ask for one move (destination None: the platform chooses). Returns when the platform has
        accepted it; that is a promise, not a result."""
        raise NotImplementedError

    def abort(self, instance, migration_id):
        """Ask to abort a running live migration (it rolls back to the source)."""
        raise NotImplementedError

    def confirm(self, instance):
        """Confirm a cold migration waiting for it (VERIFY_RESIZE)."""
        raise NotImplementedError

    def power_on(self, instance):
        """Start an instance (an evacuated instance that arrived stopped and ran before)."""
        raise NotImplementedError

    def clear_home(self, instance):
        """Remove the instance's ``leveller:home`` record once it is back on that host.

        Only called when the instance read back names a home; a backend whose instances never
        carry one (plain libvirt) needs nothing here.
        """
        return None


class NovaBackend(Backend):
    """The Nova backend: each operation is one call of ``_nova.Nova`` (microversions chosen there)."""

    name = 'nova'
    label = 'Nova'
    host_word = 'nova-compute host'

    def host_down(self, role, host, service):
        text = 'compute service of %s %s is down' % (role, host)
        if role == 'source':
            text += ': a failed host is recovered with evacuate_host state=evacuated'
        return text

    def how_to_check(self, instance):
        return '`openstack server show %s` and `openstack server migration list --server %s`' % (instance, instance)

    def __init__(self, nova):
        self.nova = nova

    def read(self, instance):
        return self.nova.get_server(instance)

    def hosts(self):
        return self.nova.compute_services()

    def needs(self, instance):
        return self.nova.instance_resources(instance)

    def room(self, host):
        return self.nova.host_room(host)

    def migrations(self, instance, kind):
        return self.nova.migrations(instance, MIGRATION_TYPE[kind])

    def start(self, kind, instance, destination):
        if kind == 'live':
            return self.nova.live_migrate(instance, destination)
        if kind == 'cold':
            return self.nova.cold_migrate(instance, destination)
        if kind == 'evacuate':
            return self.nova.evacuate(instance, destination)
        raise ValueError('unknown move kind %r' % kind)

    def abort(self, instance, migration_id):
        return self.nova.abort_migration(instance, migration_id)

    def confirm(self, instance):
        return self.nova.confirm_resize(instance)

    def power_on(self, instance):
        return self.nova.start(instance)

    def clear_home(self, instance):
        return self.nova.delete_server_metadata_item(instance, HOME_METADATA_KEY)


def backend_for(platform):
    """``platform`` itself when it is a Backend, else a NovaBackend over it (a ``_nova.Nova``)."""
    return platform if isinstance(platform, Backend) else NovaBackend(platform)
