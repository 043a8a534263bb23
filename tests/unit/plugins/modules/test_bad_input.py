# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input of every kind, to every module: it fails before anything changes, naming the field.

Each case runs a module's main() with one mistake (a snapshot or plan document, an option, an
environment variable, a file). The cloud connection is a tripwire: for every case here the
module must fail without having connected, so nothing was read from a cloud or moved. The
message must name the field (and, where there is one, the fix).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import json
import os

import pytest

from ansible_collections.cloudops.leveller.plugins.module_utils import _run_metrics
from ansible_collections.cloudops.leveller.plugins.modules import (
    evacuate_host, hypervisor_load_info, level_plan, live_migrate, run_metrics)
from ansible_collections.cloudops.leveller.tests.unit.plugins.modules.module_runner import module_runner
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    group, host, instance, snapshot,
)

CASES = []


def case(module, name, args, words, env=None, files=None):
    label = "%s: %s" % (module.__name__.split(".")[-1], name)
    CASES.append(pytest.param(module, args, words, env or {}, files or {}, id=label))


def cloud(mutate=None):
    g = group("g1", "anti-affinity", ["i1", "i2"])
    data = snapshot([host("c1", cpu=0.8, memory=0.5), host("c2", cpu=0.1, memory=0.1)],
                    [instance("i1", "c1", groups=[g]), instance("i2", "c2", groups=[g], metadata={"a": "b"})])
    if mutate:
        mutate(data)
    return data


def change(path, value=None, delete=False):
    """A mutation that sets (or deletes) one field of the snapshot, by path."""
    def mutate(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        if delete:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return mutate


def move(**fields):
    entry = {"instance": "u1", "name": "web-1", "source": "c1", "destination": "c2", "wave": 1}
    entry.update(fields)
    return entry


def plan(moves=None, **top):
    doc = {"version": 1, "strategy": "balance", "moves": moves if moves is not None else [move()]}
    doc.update(top)
    return doc


# ---------------------------------------------------------------- level_plan: the snapshot
LP = level_plan
case(LP, "unknown top-level key", {"snapshot": cloud(change(["host"], []))},
     ["host: unknown key", "did you mean hosts?"])
case(LP, "allocation_ratio typo", {"snapshot": cloud(change(["hosts", 0, "allocation_ratio", "vcpu"], 4.0))},
     ["hosts[0].allocation_ratio.vcpu: unknown key; known: vcpus, memory_mb, disk_gb (did you mean vcpus?)"])
case(LP, "reserved ram", {"snapshot": cloud(change(["hosts", 1, "reserved", "ram"], 2048))},
     ["hosts[1].reserved.ram: unknown key; known: vcpus, memory_mb, disk_gb"])
case(LP, "flavor disk", {"snapshot": cloud(change(["instances", 0, "flavor", "disk"], 20))},
     ["instances[0].flavor.disk: unknown key", "did you mean disk_gb?"])
case(LP, "host enable", {"snapshot": cloud(change(["hosts", 1, "enable"], False))},
     ["hosts[1].enable: unknown key", "did you mean enabled?"])
case(LP, "instance migrateable", {"snapshot": cloud(change(["instances", 0, "migrateable"], False))},
     ["instances[0].migrateable: unknown key", "did you mean migratable?"])
case(LP, "server_group", {"snapshot": cloud(change(["instances", 1, "server_group"], []))},
     ["instances[1].server_group: unknown key", "did you mean server_groups?"])
case(LP, "load memroy", {"snapshot": cloud(change(["hosts", 0, "load", "memroy"], 0.3))},
     ["hosts[0].load.memroy: unknown key", "did you mean memory?"])
case(LP, "host load 7.5", {"snapshot": cloud(change(["hosts", 0, "load", "cpu"], 7.5))},
     ["hosts[0].load.cpu: expected a number from 0 to 1, got 7.5"])
case(LP, "instance load 1.5", {"snapshot": cloud(change(["instances", 0, "load", "memory"], 1.5))},
     ["instances[0].load.memory: expected a number from 0 to 1, got 1.5"])
case(LP, "absurd memory", {"snapshot": cloud(change(["hosts", 0, "capacity", "memory_mb"], 2 ** 40))},
     ["hosts[0].capacity.memory_mb: expected a number from 0 to 67108864"])
case(LP, "negative vcpus", {"snapshot": cloud(change(["instances", 0, "flavor", "vcpus"], -2))},
     ["instances[0].flavor.vcpus: expected a number from 0 to 65536, got -2"])
case(LP, "allocation ratio 0", {"snapshot": cloud(change(["hosts", 0, "allocation_ratio", "memory_mb"], 0))},
     ["hosts[0].allocation_ratio.memory_mb: expected a number > 0"])
case(LP, "boolean as string", {"snapshot": cloud(change(["hosts", 0, "enabled"], "false"))},
     ["hosts[0].enabled: expected true or false, got 'false'"])
case(LP, "metadata not a string", {"snapshot": cloud(change(["instances", 1, "metadata", "leveller:pin"], True))},
     ["instances[1].metadata.leveller:pin: expected a string, got True"])
case(LP, "taken_at missing", {"snapshot": cloud(change(["taken_at"], delete=True))},
     ["taken_at: required field is missing"])
case(LP, "taken_at not a time", {"snapshot": cloud(change(["taken_at"], "yesterday"))},
     ["taken_at: expected an ISO-8601 timestamp"])
case(LP, "version 2", {"snapshot": cloud(change(["version"], 2))}, ["version: expected 1, got 2"])
case(LP, "instance on an unknown host", {"snapshot": cloud(change(["instances", 0, "host"], "c9"))},
     ["instances[0].host: expected the name of a host in hosts[], got 'c9'"])
case(LP, "two hosts of one name", {"snapshot": cloud(change(["hosts", 1, "name"], "c1"))},
     ["hosts[1].name: expected a unique host name"])
case(LP, "capacity missing", {"snapshot": cloud(change(["hosts", 0, "capacity"], delete=True))},
     ["hosts[0].capacity: required field is missing"])
case(LP, "policy unknown", {"snapshot": cloud(change(["instances", 0, "server_groups", 0, "policy"], "spread"))},
     ["instances[0].server_groups[0].policy: expected one of affinity, anti-affinity"])
case(LP, "weights out of range", {"snapshot": cloud(change(["sources", "weights"], {"cpu": 500}))},
     ["sources.weights.cpu: expected a number from 0 to 100, got 500"])
case(LP, "file not UTF-8", {"snapshot_file": "latin1.json"}, ["snapshot_file:", "is not UTF-8 text"],
     files={"latin1.json": json.dumps(cloud()).replace("vm-i1", "vm-\u00e9").encode("latin-1")})
case(LP, "file is a directory", {"snapshot_file": "."}, ["snapshot_file:", "is a directory"])
case(LP, "file missing", {"snapshot_file": "missing.json"}, ["snapshot_file: cannot read", "missing.json"])
case(LP, "file neither JSON nor YAML", {"snapshot_file": "bad.json"}, ["snapshot_file:", "neither JSON nor YAML"],
     files={"bad.json": b"{{{ : ]"})
case(LP, "file with NaN", {"snapshot_file": "nan.json"}, ["hosts[0].load.cpu: expected a number from 0 to 1, got nan"],
     files={"nan.json": json.dumps(cloud()).replace('"cpu": 0.8', '"cpu": NaN').encode()})
case(LP, "parameter below its range", {"snapshot": cloud(), "min_load": -1.0}, ["min_load: expected a number >= 0"])
case(LP, "parameter of another strategy", {"snapshot": cloud(), "threshold": 0.9},
     ["threshold: unknown parameter for this strategy"])
case(LP, "both weights 0", {"snapshot": cloud(), "weight_cpu": 0.0, "weight_memory": 0.0},
     ["weight_cpu and weight_memory cannot both be 0"])
case(LP, "unknown option", {"snapshot": cloud(), "max_move": 3}, ["max_move", "Supported parameters include"])
case(LP, "unknown strategy", {"snapshot": cloud(), "strategy": "spread"}, ["strategy", "balance, consolidate"])
case(LP, "drain without hosts", {"snapshot": cloud(), "strategy": "drain"}, ["hosts: name at least one host"])

# ---------------------------------------------------------------- live_migrate: the plan and options
LM = live_migrate
case(LM, "plan without version", {"plan": {"moves": [move()]}}, ["plan.version: required field is missing"])
case(LM, "plan version 2", {"plan": plan(version=2)}, ["plan.version: expected 1, got 2"])
case(LM, "move keyed dest", {"plan": plan([{"instance": "u1", "source": "c1", "dest": "c2"}])},
     ["plan.moves[0].destination: required field is missing"])
case(LM, "move with an extra dest", {"plan": plan([move(dest="c3")])},
     ["plan.moves[0].dest: unknown key", "did you mean destination?"])
case(LM, "empty destination", {"plan": plan([move(destination="")])},
     ["plan.moves[0].destination: expected a non-empty string, got ''"])
case(LM, "destination null", {"plan": plan([move(destination=None)])},
     ["plan.moves[0].destination: expected a non-empty string, got None"])
case(LM, "source is destination", {"plan": plan([move(destination="c1")])},
     ["plan.moves[0] (web-1): source and destination are both c1"])
case(LM, "same instance twice", {"plan": plan([move(), move(destination="c3")])},
     ["plan.moves[1] (web-1): moves instance u1 a second time"])
case(LM, "wave 0", {"plan": plan([move(wave=0)])}, ["plan.moves[0].wave: expected an integer >= 1, got 0"])
case(LM, "wave as text", {"plan": plan([move(wave="1")])}, ["plan.moves[0].wave: expected an integer >= 1, got '1'"])
case(LM, "unknown plan key", {"plan": plan(movez=[])}, ["plan.movez: unknown key", "did you mean moves?"])
case(LM, "digest malformed", {"plan": plan(snapshot_digest="md5:1")},
     ["plan.snapshot_digest: expected sha256:<64 hex digits>"])
case(LM, "negative abort_timeout", {"instance": "u1", "abort_timeout": -1}, ["abort_timeout must not be negative"])
case(LM, "max_parallel 0", {"instance": "u1", "max_parallel": 0}, ["max_parallel must be at least 1"])
case(LM, "poll_interval 0", {"instance": "u1", "poll_interval": 0.0}, ["poll_interval must be positive"])
case(LM, "instance and plan", {"instance": "u1", "plan": plan()}, ["mutually exclusive", "instance", "plan"])
case(LM, "neither instance nor plan", {}, ["one of the following is required", "instance", "plan"])
case(LM, "progress_log in a symlinked folder", {"instance": "u1", "progress_log": "link/progress.log"},
     ["progress_log", "symlink"], files={"real/": b"", "link": "->real"})

# ---------------------------------------------------------------- evacuate_host
EH = evacuate_host
case(EH, "plan with state enabled", {"host": "c1", "state": "enabled", "plan": plan()},
     ["plan is only used with state=drained"])
case(EH, "plan move of kind evacuate", {"host": "c1", "plan": plan([move(kind="evacuate")])},
     ["plan.moves[0].kind: expected one of live, cold"])
case(EH, "plan without moves", {"host": "c1", "plan": {"version": 1}}, ["plan.moves: required field is missing"])
case(EH, "wait_sleep 0", {"host": "c1", "wait_sleep": 0}, ["wait_sleep must be at least 1"])
case(EH, "unknown state", {"host": "c1", "state": "drain"}, ["state", "drained, enabled, evacuated"])
case(EH, "host missing", {"state": "drained"}, ["missing required arguments: host"])

# ---------------------------------------------------------------- hypervisor_load_info: options and environment
HLI = hypervisor_load_info
case(HLI, "page_size 0", {"page_size": 0}, ["page_size must be at least 1"])
case(HLI, "placement_workers 0", {"placement_workers": 0}, ["placement_workers must be at least 1"])
case(HLI, "libvirt_sample_interval 0", {"libvirt_sample_interval": 0.0}, ["libvirt_sample_interval must be > 0"])
case(HLI, "weight_cpu 500", {"weight_cpu": 500.0}, ["weight_cpu must be from 0 to 100 (got 500.0)"])
case(HLI, "PROMETHEUS_METRIC_WEIGHT_CPU 500", {}, ["weight_cpu must be from 0 to 100"],
     env={"PROMETHEUS_METRIC_WEIGHT_CPU": "500"})
case(HLI, "PROMETHEUS_METRIC_WEIGHT_MEM not a number", {}, ["weight_memory", "float"],
     env={"PROMETHEUS_METRIC_WEIGHT_MEM": "heavy"})
case(HLI, "sources without nova or libvirt", {"sources": ["prometheus"]}, ["sources must include nova"])
case(HLI, "unknown source", {"sources": ["nova", "snmp"]}, ["sources", "snmp"])
case(HLI, "dest in a missing folder", {"dest": "no/such/folder/snap.json"}, ["dest", "its directory does not exist"])

# ---------------------------------------------------------------- run_metrics
RM = run_metrics
PUSH = {"playbook": "balance", "pushgateway_url": "http://pushgateway.test:9091"}
case(RM, "no target", {"playbook": "balance"}, ["pushgateway_url or textfile_dir: give at least one"])
case(RM, "playbook with a slash", dict(PUSH, playbook="../balance"), ["playbook: '../balance' is not a usable label"])
case(RM, "plan move with an extra dest", dict(PUSH, plan=plan([move(dest="c3")])),
     ["plan.moves[0].dest: unknown key", "did you mean destination?"])
case(RM, "plan spread as a string", dict(PUSH, plan=plan(before={"hosts": {}, "spread": "wide"})),
     ["plan.before.spread: expected"])
SPREAD = {"max": 1.0, "min": 0.5, "ratio": 1.0, "stddev": 0.2, "mean": 0.7, "active_hosts": 2}
case(RM, "measured with a typo", dict(PUSH, measured={"hosts": {}, "spread": dict(SPREAD, stdev=0.1)}),
     ["measured.spread.stdev: unknown key", "did you mean stddev?"])
case(RM, "unknown move result", dict(PUSH, result={"moves": [{"instance": "u1", "result": "teleported"}]}),
     ["result.moves[0].result: unknown result 'teleported'"])
case(RM, "negative seconds", dict(PUSH, result={"moves": [{"instance": "u1", "result": "moved", "seconds": -1}]}),
     ["result.moves[0].seconds: expected a number of seconds"])
case(RM, "reserved label", dict(PUSH, labels={"state": "x"}), ["labels: state is a label of the metrics themselves"])
case(RM, "bad label name", dict(PUSH, labels={"cloud-name": "x"}), ["labels: 'cloud-name' is not a Prometheus label name"])
case(RM, "empty label value", dict(PUSH, labels={"cloud": ""}), ["labels.cloud: expected a non-empty string"])
case(RM, "URL not http", dict(PUSH, pushgateway_url="pushgateway:9091"), ["pushgateway_url", "is not an http(s) URL"])
case(RM, "URL of a group", dict(PUSH, pushgateway_url="http://pg:9091/metrics/job/x"),
     ["pushgateway_url: give the base URL (http://pg:9091 without /metrics/...)"])
case(RM, "URL from the environment not http", {"playbook": "balance"}, ["pushgateway_url", "is not an http(s) URL"],
     env={"LEVELLER_PUSHGATEWAY_URL": "ftp://pg"})
case(RM, "token and username", dict(PUSH, username="u", token="t"), ["mutually exclusive", "username", "token"])
case(RM, "timeout 0", dict(PUSH, timeout=0), ["timeout: expected a positive number of seconds"])
case(RM, "unknown option", dict(PUSH, gateway="x"), ["Unsupported parameters", "gateway"])


@pytest.fixture
def tripwire(monkeypatch):
    """Every way a module could reach a cloud records the call and refuses it."""
    calls = []

    def connect(module):
        calls.append("connect")
        raise AssertionError("the module connected before refusing bad input")
    for mod in (evacuate_host, hypervisor_load_info, live_migrate):
        monkeypatch.setattr(mod, "connect", connect)

    def gather(*args, **kwargs):
        calls.append("gather")
        raise AssertionError("the module gathered before refusing bad input")
    monkeypatch.setattr(hypervisor_load_info.gather_mod, "gather", gather)

    def session():
        calls.append("pushgateway")
        raise AssertionError("run_metrics opened an HTTP session before refusing bad input")

    def write(*args):
        calls.append("textfile")
        raise AssertionError("run_metrics wrote a textfile before refusing bad input")
    monkeypatch.setattr(_run_metrics.requests, "Session", session)
    monkeypatch.setattr(_run_metrics, "write_textfile", write)
    for var in ("PROMETHEUS_QUERY_URL", "PROMETHEUS_CPU_USED", "PROMETHEUS_MEM_USED", "OS_LIMIT_TO_AZ",
                "PROMETHEUS_METRIC_WEIGHT_MEM", "PROMETHEUS_METRIC_WEIGHT_CPU", "LEVELLER_PROMETHEUS_URL",
                "LEVELLER_PUSHGATEWAY_URL"):
        monkeypatch.delenv(var, raising=False)
    return calls


def _lay_out(root, files):
    for name, content in files.items():
        path = os.path.join(root, name)
        if name.endswith("/"):
            os.makedirs(path)
        elif isinstance(content, str) and content.startswith("->"):
            os.symlink(os.path.join(root, content[2:]), path)
        else:
            with open(path, "wb") as handle:
                handle.write(content)


@pytest.mark.parametrize("module, args, words, env, files", CASES)
def test_bad_input_fails_before_anything_changes(monkeypatch, tmp_path, tripwire, module, args, words, env, files):
    _lay_out(str(tmp_path), files)
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = copy.deepcopy(args)
    if module in (live_migrate, evacuate_host):
        args.setdefault("lock_dir", str(tmp_path / "locks"))
    out = module_runner(monkeypatch, module)(args)
    assert out.failed, out.result
    message = out.result["msg"]
    for word in words:
        assert word in message, message
    assert tripwire == [], "%s reached the cloud (%s) before refusing: %s" % (module.__name__, tripwire, message)


def test_the_suite_covers_every_module_with_forty_kinds_or_more():
    modules = set(c.values[0] for c in CASES)
    assert modules == set([level_plan, live_migrate, evacuate_host, hypervisor_load_info, run_metrics])
    assert len(CASES) >= 40


@pytest.mark.parametrize("timeout", [0, -5])
def test_an_api_timeout_below_one_second_is_refused_before_connecting(monkeypatch, timeout):
    from ansible_collections.cloudops.leveller.plugins.module_utils import _openstack

    class Refused(Exception):
        pass

    class Module(object):
        params = {"api_timeout": timeout, "cloud": "leveller"}

        def fail_json(self, **result):
            raise Refused(result)

    def never(**kwargs):
        raise AssertionError("connected with api_timeout %s" % timeout)
    monkeypatch.setattr(_openstack.openstack, "connect", never)
    with pytest.raises(Refused) as exc:
        _openstack.connect(Module())
    result = exc.value.args[0]
    assert result["msg"].startswith("api_timeout must be at least 1 second (got %s)" % timeout)
    assert result["failure"] == "configuration"
