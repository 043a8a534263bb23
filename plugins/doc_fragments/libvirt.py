# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Plain libvirt hosts for the modules that carry out moves (live_migrate, evacuate_host).
    # Their argument spec is libvirt_argument_spec() in module_utils/_platform.py.
    DOCUMENTATION = r'''
options:
  libvirt_uris:
    description:
      - Plain KVM hosts without OpenStack. The libvirt URI of each host, keyed by host name, as
        M(cloudops.leveller.hypervisor_load_info) takes it (for example host C(kvm1) with
        C(qemu+ssh://root@kvm1/system)). Instances are libvirt domains, named by their
        domain UUID (the instance C(id) of the snapshot) or their domain name.
      - With this option no OpenStack cloud is used; giving O(cloud) or O(auth) as well is an error.
      - Moves are libvirt peer-to-peer live migrations (the source's libvirtd connects to the
        destination), persistent on the destination and undefined on the source. Each move names its
        destination (there is no scheduler); there is no cold migration and no evacuation.
      - Before each move, the domain must run on exactly one host, its source, and not be defined on
        the destination; the destination must answer, carry no maintenance mark and have room (its
        node CPUs and memory times O(libvirt_allocation_ratio), less what the domains defined there
        hold). After it, the domain must run on the destination only, with the same UUID.
      - A completed move is written into the domain's metadata (namespace
        C(urn:cloudops-leveller:move:1)), which M(cloudops.leveller.hypervisor_load_info) reads as
        C(last_moved_at) for the planner's cooldown.
      - Connection details, credentials and the transports are in the plain-libvirt guide. URIs are
        masked in results and logs.
    type: dict
  libvirt_peer_uris:
    description:
      - The URI the source host's libvirtd uses to reach each destination, keyed by host name, when it
        differs from O(libvirt_uris) (the controller's view). Hosts not named use their O(libvirt_uris)
        entry.
      - Only with O(libvirt_uris).
    type: dict
  libvirt_allocation_ratio:
    description:
      - Allocation ratios of every libvirt host for the room check. Give the values
        M(cloudops.leveller.hypervisor_load_info) used for the snapshot, so both count the same room.
      - Only with O(libvirt_uris).
    type: dict
    suboptions:
      vcpus:
        description: vCPUs per node CPU. Unset means 1.0.
        type: float
      memory_mb:
        description: Memory overcommit. Unset means 1.0.
        type: float
  bandwidth:
    description:
      - Cap of each live migration, in MiB/s. Unset means no cap.
      - Only with O(libvirt_uris); on OpenStack, Nova's C([libvirt]live_migration_bandwidth) sets it.
    type: int
  storage:
    description:
      - V(shared) (the default with O(libvirt_uris)) moves memory only; the disks are on storage both
        hosts see.
      - V(copy) also copies non-shared disks (libvirt's C(VIR_MIGRATE_NON_SHARED_DISK)); the
        destination must have disk images of the same size at the same paths, as for
        C(virsh migrate --copy-storage-all). A move then takes longer; give it a longer O(timeout).
      - Only with O(libvirt_uris).
    type: str
    choices: [shared, copy]
'''
