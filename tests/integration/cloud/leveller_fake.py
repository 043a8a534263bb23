"""Fake compute driver of the local test cloud (test-only code).

A subclass of ``nova.virt.fake.MediumFakeDriver`` (10 vCPU, 8192 MB, 1028 GB
per host) that ``cloud.sh install`` copies to ``<site-packages>/nova/virt/``
(Nova imports compute drivers only from the ``nova.virt`` package). Loaded
with ``[DEFAULT] compute_driver = leveller_fake.LevellerFakeDriver``.

Three fixes make the fake driver behave when it runs in several real
nova-compute processes:

1. Stable node UUIDs: the fake driver takes node UUIDs from
   ``uuidsentinel``, random per process, so a restarted nova-compute would
   report another node UUID for the same host. Use uuid5(nodename), as
   ``nova.virt.fake.PredictableNodeUUIDDriver`` does.
2. Local node identity: since 2023.1 a restarted nova-compute refuses to
   start unless ``$state_path/compute_id`` exists; the fake driver never
   writes it, so write uuid5(nodename) there on the first start.
3. Source-side cleanup after a live migration: the base
   ``post_live_migration`` is a no-op, so the source host keeps the instance
   in its in-memory list and a later migration or evacuation back onto it
   fails with ``InstanceExists``. Destroy it on the source, as
   ``FakeLiveMigrateDriver.post_live_migration`` does.

A fourth fix makes a restarted nova-compute behave like one on a real
hypervisor, whose domains outlive the compute service: the fake driver keeps
its instances in memory only, so after a restart (the fault suite and the
recover tests kill computes) Nova found none of them, set their power state
to NOSTATE, and then refused to live-migrate them (HTTP 409 "in power_state
pending"). ``get_info`` now adopts an instance that the database places on
this host: running if its vm_state is active or paused, shut down if stopped.

Fault injection for the executor's fault suite, armed per instance through
the API with the metadata key ``leveller-test:fault``:

``migration-fail``
    The live migration fails on the source compute once it is ``running``:
    the driver calls Nova's rollback (``_rollback_live_migration``) as a
    hypervisor that lost the migration would. The migration record ends
    ``failed``, the instance stays ACTIVE on its source host, task_state None.

``migration-hang``
    The live migration stays ``running`` until it is aborted through the API
    (``DELETE /servers/{id}/migrations/{migration_id}``, microversion >= 2.24)
    and then rolls back: record ``cancelled``, instance ACTIVE on the source.
    ``POST .../migrations/{id}/action {"force_complete": null}`` (>= 2.22)
    completes it instead. Safety net: after ``leveller-test:hang-seconds``
    (default 900) it gives up and rolls back as ``failed``, so a forgotten
    test cannot wedge a compute host for ever.

Other values are ignored. The fault is read when the migration starts, so
arm it before calling the live-migration API.
"""
import threading
import time
import uuid

from oslo_log import log as logging

from nova.compute import power_state
from nova.virt import fake
import nova.virt.node

LOG = logging.getLogger(__name__)

FAULT_KEY = 'leveller-test:fault'
HANG_SECONDS_KEY = 'leveller-test:hang-seconds'


def _node_uuid(nodename):
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, 'cloudops-leveller-' + nodename))


def _metadata(instance):
    try:
        return dict(instance.metadata or {})
    except Exception:  # lazy-load failure: no fault armed
        return {}


class LevellerFakeDriver(fake.MediumFakeDriver):

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only)
        # instance uuid -> ('abort'|'complete'|None, threading.Event)
        self._hanging = {}
        self._hang_lock = threading.Lock()

    # -- fixes 1 and 2: stable node identity --------------------------------
    def init_host(self, host):
        super().init_host(host)
        if nova.virt.node.read_local_node_uuid() is None:
            nova.virt.node.write_local_node_uuid(_node_uuid(self._nodes[0]))

    def get_available_resource(self, nodename):
        res = super().get_available_resource(nodename)
        if res:
            res['uuid'] = _node_uuid(nodename)
        return res

    def get_nodenames_by_uuid(self, refresh=False):
        return {_node_uuid(n): n for n in self.get_available_nodes()}

    # -- fix 4: domains outlive a restart of nova-compute --------------------
    def get_info(self, instance, use_cache=True):
        if (instance.uuid not in self.instances and self._host is not None
                and instance.host == self._host and not instance.task_state):
            state = {'active': power_state.RUNNING, 'paused': power_state.PAUSED,
                     'stopped': power_state.SHUTDOWN}.get(instance.vm_state)
            if state is not None:
                LOG.info('adopting instance %s (%s) after a restart', instance.uuid, instance.vm_state)
                self.instances[instance.uuid] = fake.FakeInstance(instance.name, state, instance.uuid)
        return super().get_info(instance, use_cache)

    # -- fix 3: forget the instance on the source after a live migration ----
    def post_live_migration(self, context, instance, block_device_info,
                            migrate_data=None):
        if instance.uuid in self.instances:
            self.destroy(context, instance, network_info=None,
                         block_device_info=block_device_info)

    # -- fault injection -----------------------------------------------------
    def live_migration(self, context, instance, dest,
                       post_method, recover_method, block_migration=False,
                       migrate_data=None):
        md = _metadata(instance)
        fault = md.get(FAULT_KEY)
        if fault == 'migration-fail':
            LOG.warning('leveller-test: failing live migration to %s as '
                        'armed by metadata %s', dest, FAULT_KEY,
                        instance=instance)
            time.sleep(0.5)  # long enough to be seen as 'running'
            recover_method(context, instance, dest, migrate_data,
                           migration_status='failed')
            return
        if fault == 'migration-hang':
            try:
                limit = float(md.get(HANG_SECONDS_KEY, 900))
            except ValueError:
                limit = 900.0
            self._hang(context, instance, dest, post_method, recover_method,
                       block_migration, migrate_data, limit)
            return
        super().live_migration(context, instance, dest, post_method,
                               recover_method, block_migration, migrate_data)

    def _hang(self, context, instance, dest, post_method, recover_method,
              block_migration, migrate_data, limit):
        event = threading.Event()
        with self._hang_lock:
            self._hanging[instance.uuid] = [None, event]
        LOG.warning('leveller-test: live migration to %s hangs (armed by '
                    'metadata %s) until aborted or force-completed, at most '
                    '%.0f s', dest, FAULT_KEY, limit, instance=instance)
        deadline = time.monotonic() + limit
        try:
            while time.monotonic() < deadline:
                if event.wait(0.2):
                    break
        finally:
            with self._hang_lock:
                action = self._hanging.pop(instance.uuid, [None])[0]
        if action == 'complete':
            LOG.warning('leveller-test: hung live migration force-completed',
                        instance=instance)
            post_method(context, instance, dest, block_migration,
                        migrate_data)
        elif action == 'abort':
            LOG.warning('leveller-test: hung live migration aborted, '
                        'rolling back', instance=instance)
            recover_method(context, instance, dest, migrate_data,
                           migration_status='cancelled')
        else:
            LOG.warning('leveller-test: hung live migration gave up after '
                        '%.0f s, rolling back', limit, instance=instance)
            recover_method(context, instance, dest, migrate_data,
                           migration_status='failed')

    def _signal(self, instance, action):
        with self._hang_lock:
            entry = self._hanging.get(instance.uuid)
            if entry is not None:
                entry[0] = action
                entry[1].set()
                return True
        return False

    def live_migration_abort(self, instance):
        self._signal(instance, 'abort')

    def live_migration_force_complete(self, instance):
        self._signal(instance, 'complete')
