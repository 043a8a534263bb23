# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PlanetLab day files and the cloud of CloudSim 3.0.3's power examples, for the replay.

A day file (``<day>.csv.gz``) has one header line ``vm,t0,t300,...,t86100`` and one line per
VM, sorted by VM name: the trace's name, then 288 integers, the VM's CPU use in percent of its
own capacity every 300 s. Any day in that format replays.

The cloud is CloudSim's (``examples/power/Constants.java``, ``PlanetLabConstants.java``,
``Helper.createHostList`` / ``createVmList``): 800 hosts alternating HP ProLiant ML110 G4 (even
index) and G5 (odd index), each 2 cores, 4,096 MB, 1 Gbit/s; VMs in four types given in blocks by
their index in the sorted order, type = floor(i / ceil(N / 4)).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gzip
import math
import os

from ansible_collections.cloudops.leveller.plugins.module_utils import _replay as replay

INTERVAL = 300.0
HOSTS = 800
# name, cores, MIPS per core, RAM MB, link Mbit/s, power at 0, 10, ..., 100 % (W)
HOST_TYPES = (
    ("HP ProLiant ML110 G4 (Xeon 3040)", 2, 1860, 4096, 1000,
     (86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117)),
    ("HP ProLiant ML110 G5 (Xeon 3075)", 2, 2660, 4096, 1000,
     (93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135)),
)
# MIPS, RAM MB (one core each)
VM_TYPES = ((2500, 870), (2000, 1740), (1000, 1740), (500, 613))
# What CloudSim reserves per VM at its first placement, besides RAM (Constants.VM_BW, HOST_BW).
VM_BW_MBIT = 100


def read_day(path):
    """(names, traces) of a day file; each trace is a list of fractions (percent / 100)."""
    opener = gzip.open if path.endswith(".gz") else open
    names, traces = [], []
    with opener(path, "rt") as handle:
        header = handle.readline().strip().split(",")
        if not header or header[0] != "vm" or len(header) < 3:
            raise ValueError("%s: expected a header vm,t0,t300,..., got %r" % (path, header[:3]))
        samples = len(header) - 1
        for number, line in enumerate(handle, 2):
            line = line.strip()
            if not line:
                continue
            fields = line.split(",")
            if len(fields) != samples + 1:
                raise ValueError("%s line %d: expected %d samples, got %d"
                                 % (path, number, samples, len(fields) - 1))
            names.append(fields[0])
            # CloudSim: Integer.valueOf(line) / 100.0, the same doubles
            traces.append([int(v) / 100.0 for v in fields[1:]])
    if not names:
        raise ValueError("%s: no VM lines" % path)
    return names, traces


def day_name(path):
    base = os.path.basename(path)
    for suffix in (".csv.gz", ".csv"):
        if base.endswith(suffix):
            return base[:-len(suffix)]
    return base


def power_models():
    return [replay.PowerModel(t[5], t[0]) for t in HOST_TYPES]


def make_hosts(count=HOSTS):
    models = power_models()
    hosts = []
    for index in range(count):
        kind = index % len(HOST_TYPES)
        name, cores, core_mips, ram, link = HOST_TYPES[kind][:5]
        hosts.append(replay.Host(index, "host-%03d" % index, kind, cores, core_mips, ram, link,
                                 models[kind]))
    return hosts


def vm_kind(index, count):
    return index // int(math.ceil(count / float(len(VM_TYPES))))


def make_vms(names, traces):
    vms = []
    for index, (name, trace) in enumerate(zip(names, traces)):
        kind = vm_kind(index, len(names))
        mips, ram = VM_TYPES[kind]
        vms.append(replay.Vm(index, name, kind, mips, ram, trace, INTERVAL))
    return vms


def load(path):
    """(hosts, vms) of the CloudSim setup with the day file's VMs."""
    names, traces = read_day(path)
    return make_hosts(), make_vms(names, traces)
