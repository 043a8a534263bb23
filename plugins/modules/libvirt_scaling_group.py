#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: libvirt_scaling_group
short_description: Grow and shrink a group of libvirt domains with their measured load
version_added: 0.1.0
description:
  - A scaling group is a set of libvirt domains (its B(members)) spread over the hosts of
    O(libvirt_uris), all made from one template. Each member boots from a copy-on-write overlay of
    a base volume, with a cloud-init NoCloud seed attached as a CD-ROM.
  - Each run takes one step. Below O(min_size) it heals and above O(max_size) it shrinks, whatever
    the load. Otherwise it scales out by O(increment) when a metric of O(thresholds) is above its
    C(scale_out) value, and scales in when every metric with a sample is below its C(scale_in)
    value. When members run an older template, it replaces up to O(max_unavailable) of them. If
    none of these applies, it does nothing. The result always says why (RV(reason)).
  - After any action no further action is taken for O(cooldown) seconds, counted from the newest
    C(last_action_at) of the members. A run inside the cooldown does nothing and says how long is left.
  - The state lives with the domains, not in a database. Each member's libvirt metadata (namespace
    C(urn:cloudops-leveller:scaling:1)) records its group, index, creation time, template version,
    address, the time of the last action and the volumes made for it. A run that starts after
    another one acted finds its stamp and waits out the cooldown. Two runs that read the group at
    the same moment decide the same step, with the same names on the same hosts; the later one's
    creations then fail on the names the first one took and leave nothing behind.
  - A new member gets an overlay volume C(<name>.qcow2) backed by O(template.base_volume) and a
    seed volume C(<name>-seed.iso) in O(template.pool) on its host. The seed has the volume label
    C(cidata) and holds the user-data, the meta-data (C(instance-id) is the domain UUID,
    C(local-hostname) the member name) and, with O(cloud_init.network.addresses), a version 2
    network-config. The persistent domain is then defined and started.
  - Removing a member destroys and undefines its domain and deletes the volumes its record names,
    nothing else. A volume that another domain or volume still uses is never deleted.
  - Members are named C(<name>-<index>). A domain with such a name but without this group's record
    makes the run fail before anything changes; that domain is never touched.
  - Bad input (O(min_size) above O(max_size), an address range smaller than O(max_size), a missing
    pool or base volume on a host, user-data that is not valid YAML, unknown keys) fails before
    anything is created, with a message naming the option.
extends_documentation_fragment:
  - cloudops.leveller.attributes
attributes:
  check_mode:
    support: full
    details:
      - Connects, reads the members, measures and decides. RV(action), RV(reason), RV(created)
        and RV(removed) show what a real run would do; nothing is created, removed or stamped.
  diff_mode:
    support: full
    details:
      - The members (name, host, template version, state) before and after the run, predicted in
        check mode.
options:
  name:
    description:
      - Name of the group and prefix of its members' domain names (C(<name>-1), C(<name>-2), ...).
      - 1 to 56 lowercase letters, digits and C(-), starting and ending with a letter or digit.
    type: str
    required: true
  libvirt_uris:
    description:
      - The hosts of the group, each host name with its libvirt URI (for example host C(kvm1) with
        C(qemu+ssh://root@kvm1/system)). The module connects read-write to every one of them.
      - The keys are the placement hosts, in this order (O(placement)). Members are looked for on
        every host, so every host must answer, or nothing is changed.
      - URIs are masked in results and messages (a password in them never shows).
    type: dict
    required: true
  state:
    description:
      - V(present) converges the group one step (see the description).
      - V(absent) removes every member of the group and the volumes their records name. Domains that
        only look like members are left alone (a warning names them).
    type: str
    choices: [present, absent]
    default: present
  template:
    description:
      - What each member is made of. Required with O(state=present).
      - A change of the template or of O(cloud_init) (except the address range) changes
        RV(template_version); the members are then replaced step by step, at most
        O(max_unavailable) at a time.
    type: dict
    suboptions:
      pool:
        description:
          - Name of the libvirt storage pool on every host that holds the base volume and takes the
            members' overlay and seed volumes. It must exist and be active on every host.
        type: str
        required: true
      base_volume:
        description:
          - Name of the base volume in O(template.pool) (qcow2 or raw). Each member's disk is a qcow2
            overlay backed by it, so it must never change while members use it; upload a new image
            under a new name and change this option (the members are then replaced).
        type: str
        required: true
      vcpus:
        description: Virtual CPUs of each member.
        type: int
        required: true
      memory_mb:
        description: Memory of each member, in MiB.
        type: int
        required: true
      network:
        description:
          - Name of the libvirt network each member joins with one virtio NIC.
          - Unset means no NIC at all.
        type: str
      machine_type:
        description:
          - QEMU machine type (for example V(q35) or V(pc)). Unset means the hypervisor's default.
        type: str
      emulator:
        description:
          - V(kvm) for hardware virtualisation (host-model CPU), V(qemu) for QEMU's TCG emulation,
            for hosts without KVM.
        type: str
        choices: [kvm, qemu]
        default: kvm
      kernel:
        description:
          - Path of a kernel on the hosts to boot directly instead of the disk (diskless test
            images). Unset means booting the overlay disk.
        type: str
  cloud_init:
    description:
      - The cloud-init content of each member's NoCloud seed.
    type: dict
    suboptions:
      user_data:
        description:
          - 'The user-data, inline. It must start with C(#cloud-config) (and be a YAML mapping),
            C(#!) (a script) or C(Content-Type: multipart). Unset (with O(cloud_init.user_data_file)
            unset as well) means an empty cloud-config.'
          - Mutually exclusive with O(cloud_init.user_data_file).
        type: str
      user_data_file:
        description:
          - A file holding the user-data, read on the host that runs the module.
          - Mutually exclusive with O(cloud_init.user_data).
        type: path
      network:
        description:
          - Static addresses for the members, written as network-config version 2. Needs
            O(template.network).
        type: dict
        suboptions:
          addresses:
            description:
              - The addresses members take, as a range V(192.168.5.10-192.168.5.40), a CIDR
                V(192.168.5.0/27) (its usable host addresses), a single address, or a list of them.
              - Each new member takes the lowest address that no member of the group holds (the
                members' records say which); it must hold at least O(max_size) addresses.
            type: raw
          prefix_length:
            description: Prefix length of the members' network (V(24) for a /24). Required with addresses.
            type: int
          gateway:
            description: Default gateway, an address of the members' network.
            type: str
          nameservers:
            description: DNS servers.
            type: list
            elements: str
  min_size:
    description:
      - The fewest members. Below it the group heals whatever the load and the cooldown.
    type: int
    default: 1
  max_size:
    description:
      - The most members. Above it the group shrinks whatever the load and the cooldown.
      - Required with O(state=present).
    type: int
  increment:
    description:
      - Members added or removed by one scaling step, clamped to O(min_size) and O(max_size).
    type: int
    default: 1
  cooldown:
    description:
      - Seconds after any action (heal, scale, replacement) before the next scaling or replacement
        step. Healing and the O(max_size) clamp do not wait.
    type: int
    default: 300
  window:
    description:
      - Seconds of the trailing window the metrics are judged over. Each member's samples in it are
        averaged, then the members' means are averaged.
      - Only with O(metrics_source=prometheus). libvirt keeps no history, so with
        O(metrics_source=libvirt) the window is O(sample_interval) (RV(measured) says so).
    type: int
    default: 300
  thresholds:
    description:
      - The band of each metric that the group is judged on; at least one metric. Required with
        O(state=present).
      - The group scales out when any metric is above its C(scale_out) value and scales in when
        every metric with samples is below its C(scale_in) value. A metric without samples never
        triggers anything.
    type: dict
    suboptions:
      cpu:
        description: Busy share of the members' own vCPUs, 0 to 1.
        type: dict
        suboptions:
          scale_out:
            description: Scale out above this value.
            type: float
            required: true
          scale_in:
            description: Scale in below this value; lower than O(thresholds.cpu.scale_out).
            type: float
            required: true
      memory:
        description: Used share of the members' own memory, 0 to 1.
        type: dict
        suboptions:
          scale_out:
            description: Scale out above this value.
            type: float
            required: true
          scale_in:
            description: Scale in below this value; lower than O(thresholds.memory.scale_out).
            type: float
            required: true
      disk_io:
        description: Disk reads plus writes of a member, in bytes per second.
        type: dict
        suboptions:
          scale_out:
            description: Scale out above this value.
            type: float
            required: true
          scale_in:
            description: Scale in below this value; lower than O(thresholds.disk_io.scale_out).
            type: float
            required: true
  placement:
    description:
      - Where new members go, among the hosts of O(libvirt_uris) that answer, carry no maintenance
        mark and have room (node CPUs and memory times O(allocation_ratio), less what every domain
        defined there holds).
      - V(round_robin) evens the number of members per host; V(most_free) takes the host with the
        most free memory; V(fill_first) fills the hosts in the order of O(libvirt_uris).
    type: str
    choices: [round_robin, most_free, fill_first]
    default: round_robin
  scale_in_order:
    description:
      - Which members a scale-in removes first, by creation time.
    type: str
    choices: [newest, oldest]
    default: oldest
  max_unavailable:
    description:
      - How many members a template replacement may take out at a time. New members are made
        before the old ones go (unless no address is spare); at least the group's size less this
        many members stay running, new ones not counted.
    type: int
    default: 1
  metrics_source:
    description:
      - V(libvirt) samples each running member's CPU time, balloon memory and block bytes twice,
        O(sample_interval) seconds apart.
      - V(prometheus) runs one range query per judged metric over O(window) (O(query_cpu),
        O(query_memory), O(query_disk_io)).
    type: str
    choices: [libvirt, prometheus]
    default: libvirt
  sample_interval:
    description:
      - Seconds between the two libvirt samples (O(metrics_source=libvirt)).
    type: float
    default: 5.0
  prometheus_url:
    description:
      - Base URL of the Prometheus HTTP API, with its route prefix if it has one. Required with
        O(metrics_source=prometheus).
      - Credentials in the URL are sent as HTTP basic authentication and never echoed.
      - Falls back to the environment variable E(LEVELLER_PROMETHEUS_URL).
    type: str
  query_cpu:
    description:
      - PromQL returning, per member, the busy share of its vCPUs (0 to 1), one series per member
        labelled with O(prometheus_member_label).
      - The default reads the libvirt exporter. It divides the rate of
        C(libvirt_domain_info_cpu_time_seconds_total) by C(libvirt_domain_info_virtual_cpus), both
        summed by O(prometheus_member_label). The scaling groups guide shows it in full.
    type: str
  query_memory:
    description:
      - PromQL returning, per member, the used share of its memory (0 to 1).
      - The default divides the libvirt exporter's C(libvirt_domain_info_memory_usage_bytes) by
        C(libvirt_domain_info_maximum_memory_bytes).
    type: str
  query_disk_io:
    description:
      - PromQL returning, per member, its disk reads plus writes in bytes per second.
      - The default adds the rates of the libvirt exporter's C(libvirt_domain_block_stats_read_bytes_total)
        and C(libvirt_domain_block_stats_write_bytes_total).
    type: str
  prometheus_member_label:
    description:
      - Label of the series that names the member. Its value may be the domain UUID or the domain
        name (the libvirt exporter has both, as C(uuid) and C(domain)).
    type: str
    default: uuid
  prometheus_step:
    description:
      - Step of the range queries, in seconds. Unset means O(window) / 30, at least 1.
    type: float
  prometheus_timeout:
    description: Timeout of each Prometheus request, in seconds.
    type: int
    default: 10
  prometheus_validate_certs:
    description: Whether to verify the TLS certificate of Prometheus.
    type: bool
    default: true
  prometheus_ca_cert:
    description: CA bundle to verify the TLS certificate of Prometheus.
    type: path
  prometheus_token:
    description: Bearer token sent to Prometheus.
    type: str
  prometheus_username:
    description: User name for HTTP basic authentication to Prometheus.
    type: str
  prometheus_password:
    description: Password for HTTP basic authentication to Prometheus.
    type: str
  allocation_ratio:
    description:
      - Overcommit of every host for the room check of O(placement).
    type: dict
    suboptions:
      vcpus:
        description: vCPUs per node CPU.
        type: float
        default: 1.0
      memory_mb:
        description: Memory overcommit.
        type: float
        default: 1.0
  connect_timeout:
    description:
      - Seconds to wait for the connections to all hosts. Once connected, a host that stops
        answering is detected by libvirt's keepalive and fails the run.
    type: float
    default: 30.0
  lock_timeout:
    description:
      - A run that may change the group (not in check mode) first takes the group's lock, an
        exclusive lock on a file on the machine that runs the module, keyed by O(name) and the
        sorted O(libvirt_uris). A second run of the same group (two overlapping schedules) waits
        up to this many seconds, then reads the members as the first run left them, cooldown
        stamp included, and decides on that.
      - C(0) fails at once, naming the holder. Runs from different controllers are not excluded.
    type: int
    default: 600
  lock_dir:
    description:
      - Directory of the lock files. Defaults to C($XDG_RUNTIME_DIR/cloudops-leveller/locks), or
        C(~/.cache/cloudops-leveller/locks). A directory or lock file that is a symlink is refused.
    type: path
requirements:
  - libvirt-python
  - pycdlib (the NoCloud seed)
  - PyYAML
  - requests (for O(metrics_source=prometheus))
notes:
  - The module runs where the task runs (usually the controller, C(delegate_to=localhost)) and
    reaches the hosts through O(libvirt_uris).
  - The user-data is never returned, but it is an option value like any other; keep secrets in it
    encrypted with Ansible Vault.
  - To run the group on a schedule, see the C(cloudops.leveller.autoscale) playbook and the scaling
    groups guide.
seealso:
  - module: cloudops.leveller.hypervisor_load_info
author:
  - cloudops.leveller contributors (@cloudops-leveller)
'''

EXAMPLES = r'''
- name: A web tier of 2 to 6 members on two KVM hosts, scaled on CPU
  cloudops.leveller.libvirt_scaling_group:
    name: web
    libvirt_uris:
      kvm1: qemu+ssh://root@kvm1.example.org/system
      kvm2: qemu+ssh://root@kvm2.example.org/system
    template:
      pool: images
      base_volume: debian-12-genericcloud-amd64.qcow2
      vcpus: 2
      memory_mb: 2048
      network: default
    cloud_init:
      user_data_file: files/web-user-data.yaml
      network:
        addresses: 192.168.122.100-192.168.122.119
        prefix_length: 24
        gateway: 192.168.122.1
        nameservers: [192.168.122.1]
    min_size: 2
    max_size: 6
    increment: 2
    cooldown: 300
    thresholds:
      cpu:
        scale_out: 0.75
        scale_in: 0.25
  register: web

- name: Say what happened
  ansible.builtin.debug:
    msg: "{{ web.action }}: {{ web.reason }}"

- name: The same decision from Prometheus (libvirt exporter), fill kvm1 first, remove the newest first
  cloudops.leveller.libvirt_scaling_group:
    name: web
    libvirt_uris:
      kvm1: qemu+ssh://root@kvm1.example.org/system
      kvm2: qemu+ssh://root@kvm2.example.org/system
    template:
      pool: images
      base_volume: debian-12-genericcloud-amd64.qcow2
      vcpus: 2
      memory_mb: 2048
      network: default
    max_size: 6
    window: 600
    metrics_source: prometheus
    prometheus_url: http://prometheus.example.org:9090
    thresholds:
      cpu:
        scale_out: 0.75
        scale_in: 0.25
      disk_io:
        scale_out: 52428800
        scale_in: 1048576
    placement: fill_first
    scale_in_order: newest
  check_mode: true

- name: Remove the group and its volumes
  cloudops.leveller.libvirt_scaling_group:
    name: web
    libvirt_uris:
      kvm1: qemu+ssh://root@kvm1.example.org/system
      kvm2: qemu+ssh://root@kvm2.example.org/system
    state: absent
'''

RETURN = r'''
action:
  description:
    - What the run did (or would do in check mode). V(heal), V(scale_out), V(scale_in),
      V(replace), V(absent) or V(none).
  returned: success
  type: str
  sample: scale_out
reason:
  description: One sentence saying why, with the judged numbers.
  returned: success
  type: str
  sample: cpu 0.91 > scale_out 0.75 over 300 s; 2 -> 4 members
metrics:
  description:
    - The judged value of each metric (C(cpu), C(memory), C(disk_io)), null without samples. Each
      is the mean over members of each member's mean in the window.
  returned: success
  type: dict
  sample: {cpu: 0.91, memory: null, disk_io: null}
measured:
  description:
    - Where the metrics came from. C(source), C(window) (seconds judged), C(members) (members
      with samples); with libvirt a C(note) that the window is the sampling interval, with
      Prometheus the C(step) and the C(queries).
  returned: with O(state=present)
  type: dict
lock_waited:
  description: Seconds this run waited for the group's lock (see O(lock_timeout)); 0 in check mode.
  returned: success
  type: float
  sample: 0.0
size_before:
  description: Members before the run.
  returned: success
  type: int
  sample: 2
size_after:
  description: Members after the run (predicted in check mode).
  returned: success
  type: int
  sample: 4
waiting:
  description: Seconds left of the cooldown when it held the run back, else null.
  returned: success
  type: int
  sample: 120
template_version:
  description: The digest of the template and cloud-init content that new members get.
  returned: with O(state=present)
  type: str
  sample: 3f9a0c1d2e4b5a69
remove_first:
  description: Whether a replacement removes the old members before making the new ones (no spare address).
  returned: with O(state=present)
  type: bool
hosts:
  description: Per host, C(up) (it takes members), C(free_vcpus) and C(free_memory_mb) before the run.
  returned: with O(state=present)
  type: dict
created:
  description:
    - The members made by the run, or that it would make in check mode (then C(uuid) is null).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Domain name.
      type: str
    host:
      description: Host of O(libvirt_uris).
      type: str
    index:
      description: Member index.
      type: int
    uuid:
      description: Domain UUID, also the seed's C(instance-id).
      type: str
    address:
      description: Static address from O(cloud_init.network.addresses), or null.
      type: str
    volumes:
      description: Names of the overlay and seed volumes in O(template.pool).
      type: list
      elements: str
removed:
  description: The members removed (or that would be), with the volumes deleted.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Domain name.
      type: str
    host:
      description: Host it was on.
      type: str
    domain_removed:
      description: Whether the domain was still there to remove.
      type: bool
    volumes:
      description: Names of the volumes deleted.
      type: list
      elements: str
members:
  description: The members after the run (as found, in check mode), by index.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Domain name.
      type: str
    host:
      description: Host of O(libvirt_uris).
      type: str
    index:
      description: Member index.
      type: int
    uuid:
      description: Domain UUID.
      type: str
    address:
      description: Static address, or null.
      type: str
    template_version:
      description: The template version the member was made from.
      type: str
    created_at:
      description: Creation time (UTC, ISO 8601).
      type: str
    last_action_at:
      description: Time of the last group action recorded on the member (UTC, ISO 8601).
      type: str
    running:
      description: Whether the domain runs.
      type: bool
    state:
      description: libvirt's state of the domain (V(running), V(shutoff), ...).
      type: str
    volumes:
      description: Volumes the member's record names.
      type: list
      elements: str
failure:
  description:
    - On failure, its class. V(configuration) (fix the options), V(unreachable) (a host or
      Prometheus does not answer), V(permission), V(inconsistent) (a clash, or a member on two hosts).
  returned: failure
  type: str
  sample: configuration
'''

import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import (
    FailureClass, LevellerError, LevellerModule, redact_url)
from ansible_collections.cloudops.leveller.plugins.module_utils import _cloudinit as ci
from ansible_collections.cloudops.leveller.plugins.module_utils import _scaling_group as sg


def _band():
    return dict(type='dict', options=dict(scale_out=dict(type='float', required=True),
                                          scale_in=dict(type='float', required=True)))


def argument_spec():
    return dict(
        name=dict(type='str', required=True),
        libvirt_uris=dict(type='dict', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        template=dict(type='dict', options=dict(
            pool=dict(type='str', required=True),
            base_volume=dict(type='str', required=True),
            vcpus=dict(type='int', required=True),
            memory_mb=dict(type='int', required=True),
            network=dict(type='str'),
            machine_type=dict(type='str'),
            emulator=dict(type='str', default='kvm', choices=['kvm', 'qemu']),
            kernel=dict(type='str'),
        )),
        cloud_init=dict(type='dict', mutually_exclusive=[('user_data', 'user_data_file')], options=dict(
            user_data=dict(type='str'),
            user_data_file=dict(type='path'),
            network=dict(type='dict', options=dict(
                addresses=dict(type='raw'),
                prefix_length=dict(type='int'),
                gateway=dict(type='str'),
                nameservers=dict(type='list', elements='str'),
            )),
        )),
        min_size=dict(type='int', default=1),
        max_size=dict(type='int'),
        increment=dict(type='int', default=1),
        cooldown=dict(type='int', default=300),
        window=dict(type='int', default=300),
        thresholds=dict(type='dict', options=dict(cpu=_band(), memory=_band(), disk_io=_band())),
        placement=dict(type='str', default='round_robin', choices=['round_robin', 'most_free', 'fill_first']),
        scale_in_order=dict(type='str', default='oldest', choices=['newest', 'oldest']),
        max_unavailable=dict(type='int', default=1),
        metrics_source=dict(type='str', default='libvirt', choices=['libvirt', 'prometheus']),
        sample_interval=dict(type='float', default=5.0),
        prometheus_url=dict(type='str', fallback=(env_fallback, ['LEVELLER_PROMETHEUS_URL'])),
        query_cpu=dict(type='str'),
        query_memory=dict(type='str'),
        query_disk_io=dict(type='str'),
        prometheus_member_label=dict(type='str', default='uuid'),
        prometheus_step=dict(type='float'),
        prometheus_timeout=dict(type='int', default=10),
        prometheus_validate_certs=dict(type='bool', default=True),
        prometheus_ca_cert=dict(type='path'),
        prometheus_token=dict(type='str', no_log=True),
        prometheus_username=dict(type='str'),
        prometheus_password=dict(type='str', no_log=True),
        allocation_ratio=dict(type='dict', options=dict(
            vcpus=dict(type='float', default=1.0),
            memory_mb=dict(type='float', default=1.0),
        )),
        connect_timeout=dict(type='float', default=30.0),
        lock_timeout=dict(type='int', default=600),
        lock_dir=dict(type='path'),
    )


def main():
    module = LevellerModule(argument_spec=argument_spec(), supports_check_mode=True,
                            required_if=[('state', 'present', ('template', 'max_size', 'thresholds'))],
                            required_by=dict(prometheus_password=['prometheus_username']),
                            mutually_exclusive=[('prometheus_token', 'prometheus_username')])
    if not sg.HAS_LIBVIRT:
        module.fail_json(msg=missing_required_lib('libvirt-python'), exception=sg.lvsrc.LIBVIRT_IMPORT_ERROR,
                         failure=FailureClass.CONFIGURATION)
    if module.params['state'] == 'present' and not ci.HAS_PYCDLIB:
        module.fail_json(msg=missing_required_lib('pycdlib'), exception=ci.PYCDLIB_IMPORT_ERROR,
                         failure=FailureClass.CONFIGURATION)
    try:
        result = sg.run(module.params, check_mode=module.check_mode, diff=module._diff)
    except sg.GroupActionError as exc:
        module.fail_json(msg=str(exc), failure=exc.failure, created=exc.partial['created'],
                         removed=exc.partial['removed'])
    except LevellerError as exc:
        module.fail_json(msg=str(exc), failure=exc.failure)
    except Exception as exc:  # a bug, or a libvirt error not classified: still say what it was
        module.fail_json(msg='Unexpected error in scaling group %s: %s' % (module.params['name'], redact_url(str(exc))),
                         exception=traceback.format_exc(), failure=FailureClass.INCONSISTENT)
    for warning in result.pop('warnings', []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
