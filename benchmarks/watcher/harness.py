# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one OpenStack Watcher strategy in-process on a snapshot; write its moves as JSON.

Runs inside the Watcher venv ($LEVELLER_HOME/watcher-venv, made by setup.sh beside this file),
never in the collection's. It builds Watcher's compute model (ModelRoot, ComputeNode, Instance)
from a snapshot dict, answers Watcher's metric queries from the snapshot's loads (loads.py, the
same model the benchmark judges both tools with), runs the strategy with its schema defaults
(the defaults an audit without parameters gets), and converts the solution's migrate actions
into moves of our plan format, so benchmarks/check.py and the CPU stddev are computed by our
code for both tools.

    python benchmarks/watcher/harness.py snapshot.json workload_stabilization -o out.json

What the model can and cannot carry:
- ComputeNode has no AZ or aggregate field (Watcher knows AZs only as an audit scope); the audit
  here covers the whole cloud, as an audit without a scope does.
- Instances the leveller may not move (pinned, not migratable, excluded) are marked
  ``watcher_exclude``, as an operator would exclude them in the audit scope; locked instances
  keep ``locked``. Nothing tells Watcher about server groups: it has no notion of them.
- Applying the solution, an action whose instance is no longer on its source host is skipped,
  as Watcher's migrate pre-condition does; the skipped count is reported.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import datetime
import json
import os
import random
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.append(HERE)

import loads  # noqa: E402  (benchmark-local load model, standard library only)

STATES = {"ACTIVE": "active", "PAUSED": "paused", "SHUTOFF": "stopped", "SUSPENDED": "suspended",
          "SHELVED": "shelved", "SHELVED_OFFLOADED": "shelved", "ERROR": "error", "BUILD": "building",
          "RESCUE": "rescued", "VERIFY_RESIZE": "resized"}
CREATED = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
# A fixed seed: workload_stabilization's default host_choice "retry" samples destinations at
# random; seeding makes a run repeatable (another seed gives another, similar, plan).
SEED = 1


def _pinned(inst):
    value = (inst.get("metadata") or {}).get("leveller:pin")
    if value is not None and str(value).strip().lower() in ("true", "yes", "1"):
        return True
    return "leveller-pin" in (inst.get("tags") or [])


class SnapshotDatasource(object):
    """Answers Watcher's metric calls from the snapshot (units as Watcher's datasources use)."""

    NAME = "snapshot"
    METRIC_MAP = dict((name, name) for name in (
        "host_cpu_usage", "host_ram_usage", "instance_cpu_usage", "instance_ram_usage",
        "instance_ram_allocated", "instance_root_disk_size"))

    def __init__(self, state, flavors):
        self.state = state
        self.flavors = flavors
        self.host_load = loads.host_loads(state)
        self.queries = 0

    def list_metrics(self):
        return set(self.METRIC_MAP)

    def check_availability(self):
        return "available"

    def statistic_aggregation(self, resource=None, resource_type=None, meter_name=None, period=300,
                              aggregate="mean", granularity=300):
        self.queries += 1
        ident = resource.uuid
        if meter_name.startswith("host_"):
            host = self.state["hosts"][ident]
            cpu, mem = self.host_load[ident]
            if meter_name == "host_cpu_usage":
                return cpu * 100.0  # percent
            if meter_name == "host_ram_usage":
                return mem * host["size"][1] * 1024.0  # KiB
            return None
        inst = self.state["instances"].get(ident)
        if inst is None:
            return None
        if meter_name == "instance_cpu_usage":
            return inst["use"][0] / inst["vcpus"] * 100.0 if inst["vcpus"] else 0.0  # percent
        if meter_name == "instance_ram_usage":
            return inst["use"][1]  # MB
        if meter_name == "instance_ram_allocated":
            return inst["memory_mb"]
        if meter_name == "instance_root_disk_size":
            return self.flavors[ident].get("disk_gb") or 0
        return None

    def _by(self, meter):
        def get(resource, period=300, aggregate="mean", granularity=300):
            return self.statistic_aggregation(resource, None, meter, period, aggregate, granularity)
        return get

    def __getattr__(self, name):
        if name.startswith("get_") and name[4:] in self.METRIC_MAP:
            return self._by(name[4:])
        raise AttributeError(name)


def build_model(snapshot):
    """Watcher's ModelRoot for the snapshot, the way its Nova collector fills one."""
    from watcher.decision_engine.model import element, model_root

    model = model_root.ModelRoot()
    nodes = {}
    for host in sorted(snapshot["hosts"], key=lambda h: h["name"]):
        cap, reserved, ratio = host["capacity"], host.get("reserved") or {}, host.get("allocation_ratio") or {}
        node = element.ComputeNode(
            uuid=host["name"], hostname=host["name"],
            memory=int(cap["memory_mb"]), memory_mb_reserved=int(reserved.get("memory_mb") or 0),
            memory_ratio=float(ratio.get("memory_mb") or 1.0),
            disk=int(cap["disk_gb"]), disk_gb_reserved=int(reserved.get("disk_gb") or 0),
            disk_ratio=float(ratio.get("disk_gb") or 1.0),
            vcpus=int(cap["vcpus"]), vcpu_reserved=int(reserved.get("vcpus") or 0),
            vcpu_ratio=float(ratio.get("vcpus") or 1.0),
            state="up" if host.get("up", True) and not host.get("forced_down") else "down",
            status="enabled" if host.get("enabled", True) else "disabled",
            disabled_reason=host.get("disabled_reason"))
        model.add_node(node)
        nodes[host["name"]] = node
    for inst in sorted(snapshot["instances"], key=lambda i: i["id"]):
        flavor = inst["flavor"]
        element_inst = element.Instance(
            uuid=inst["id"], name=inst.get("name") or inst["id"], memory=int(flavor["memory_mb"]),
            disk=int(flavor.get("disk_gb") or 0), vcpus=int(flavor["vcpus"]),
            state=STATES.get(inst.get("status", "ACTIVE"), "error"), metadata=inst.get("metadata") or {},
            project_id=str(uuid.uuid5(uuid.NAMESPACE_URL, inst.get("project") or "")),
            locked=bool(inst.get("locked")), host=inst["host"], hypervisor_hostname=inst["host"],
            created=CREATED,
            watcher_exclude=bool(_pinned(inst) or inst.get("migratable") is False))
        model.add_instance(element_inst)
        model.map_instance(element_inst, nodes[inst["host"]])
    return model


def run(snapshot, strategy_name, parameters=None):
    """Run one strategy; returns the result dict (moves in our plan format)."""
    from watcher.common import utils
    from watcher.decision_engine.strategy import strategies

    classes = {"workload_stabilization": strategies.WorkloadStabilization,
               "workload_balance": strategies.WorkloadBalance,
               "basic_consolidation": strategies.BasicConsolidation}
    random.seed(SEED)
    state = loads.model(snapshot)
    flavors = dict((i["id"], i["flavor"]) for i in snapshot["instances"])
    wall, cpu = time.perf_counter(), time.process_time()
    model = build_model(snapshot)
    build = time.perf_counter() - wall
    cls = classes[strategy_name]
    # The strategy's own config options at their defaults, as an unconfigured decision engine has.
    config = utils.Struct(datasources=None)
    for opt in cls.get_config_opts():
        config[opt.dest] = opt.default
    strategy = cls(config=config, osc=object())
    given = dict(parameters or {})
    params = dict(given)
    utils.StrictDefaultValidatingDraft4Validator(cls.get_schema()).validate(params)
    strategy.input_parameters.update(params)
    strategy._compute_model = model
    datasource = SnapshotDatasource(state, flavors)
    strategy._datasource_backend = datasource
    solution = strategy.execute()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    where = dict((i["id"], i["host"]) for i in snapshot["instances"])
    names = dict((i["id"], i.get("name")) for i in snapshot["instances"])
    moves, skipped, other = [], 0, {}
    for action in solution.actions:
        kind = action.get("action_type")
        if kind != "migrate":
            other[kind] = other.get(kind, 0) + 1
            continue
        parameters_ = action["input_parameters"]
        ident = parameters_["resource_id"]
        source, dest = parameters_["source_node"], parameters_.get("destination_node")
        if where.get(ident) != source or dest is None or dest == source:
            skipped += 1
            continue
        flavor = flavors[ident]
        moves.append({"instance": ident, "name": names[ident], "source": source, "destination": dest,
                      "wave": len(moves) + 1, "reason": "watcher %s" % strategy_name,
                      "memory_mb": flavor["memory_mb"],
                      "flavor": dict((k, flavor[k]) for k in ("vcpus", "memory_mb", "disk_gb"))})
        where[ident] = dest
    indicators = {}
    for indicator in getattr(solution, "efficacy_indicators", None) or []:
        indicators[indicator.name] = indicator.value
    return {"tool": "watcher", "strategy": strategy_name, "parameters_given": given,
            "parameters": params, "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
            "model_build_seconds": round(build, 3), "moves": moves, "actions_skipped": skipped,
            "other_actions": other, "metric_queries": datasource.queries,
            "efficacy_indicators": indicators, "status": "ok"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", help="snapshot JSON file")
    parser.add_argument("strategy", choices=("workload_stabilization", "workload_balance",
                                             "basic_consolidation"))
    parser.add_argument("--parameters", default="{}", help="strategy parameters as JSON (default: none)")
    parser.add_argument("-o", "--output", default="-")
    args = parser.parse_args(argv)
    import logging
    logging.disable(logging.WARNING)  # Watcher logs a warning per instance on some paths
    with open(args.snapshot) as handle:
        snapshot = json.load(handle)
    result = run(snapshot, args.strategy, json.loads(args.parameters))
    import importlib.metadata
    result["watcher_version"] = importlib.metadata.version("python-watcher")
    result["python"] = sys.version.split()[0]
    text = json.dumps(result, indent=1, sort_keys=True, default=str)
    if args.output == "-":
        sys.stdout.write(text + "\n")
    else:
        with open(args.output, "w") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
