# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The snapshot and plan contracts are strict and have one source.

- docs/schema/*.json are _schema.SNAPSHOT and _schema.PLAN written out, byte for byte;
- on generated documents, valid and broken, the loaders and the jsonschema library accept
  and refuse exactly the same ones;
- every unknown key is refused with its path, the known keys and a near miss;
- loads are fractions, sizes are bounded, files that are not UTF-8 or not files are refused.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import json
import math
import os
import random

import jsonschema
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.cloudops.leveller.plugins.module_utils import _schema as schema
from ansible_collections.cloudops.leveller.plugins.module_utils import _snapshot as snap
from ansible_collections.cloudops.leveller.plugins.module_utils._execute import moves_from_plan
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import make_plan
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    clouds, group, host, instance, random_cloud, snapshot,
)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 5))
SNAPSHOT_CHECK = jsonschema.Draft202012Validator(schema.SNAPSHOT)
PLAN_CHECK = jsonschema.Draft202012Validator(schema.PLAN)


@pytest.mark.parametrize("name, contract", [("snapshot-v1.schema.json", schema.SNAPSHOT),
                                            ("plan-v1.schema.json", schema.PLAN)])
def test_the_published_schemas_are_the_loaders_own(name, contract):
    with open(os.path.join(ROOT, "docs", "schema", name)) as handle:
        text = handle.read()
    assert text == schema.as_text(contract), (
        "docs/schema/%s differs from plugins/module_utils/_schema.py: run "
        "python -c 'from ansible_collections.cloudops.leveller.plugins.module_utils import _schema; "
        "_schema.write_docs(\"docs/schema\")'" % name)
    jsonschema.Draft202012Validator.check_schema(contract)


def _every_object_is_closed(node, path="$"):
    if isinstance(node, dict):
        if node.get("type") == "object" or "object" in (node.get("type") or []):
            assert node.get("additionalProperties") is not True and "additionalProperties" in node, path
        for key, value in node.items():
            _every_object_is_closed(value, path + "." + key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _every_object_is_closed(value, "%s[%d]" % (path, index))


def _every_number_is_bounded(node, path="$"):
    if isinstance(node, dict):
        kinds = node.get("type") or []
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if "number" in kinds or "integer" in kinds:
            assert "maximum" in node and ("minimum" in node or "exclusiveMinimum" in node), path
        for key, value in node.items():
            _every_number_is_bounded(value, path + "." + key)


@pytest.mark.parametrize("contract", [schema.SNAPSHOT, schema.PLAN])
def test_every_object_refuses_unknown_keys_and_every_number_is_bounded(contract):
    # Bounded numbers are what make NaN and infinities fail in both validators alike.
    _every_object_is_closed(contract)
    _every_number_is_bounded(contract)


# ---------------------------------------------------------------- agreement on generated documents

# NaN is not JSON (RFC 8259): Python's json module reads it as an extension and the loaders refuse
# it (test_mistakes_are_refused_naming_the_field_and_the_fix), while jsonschema, which validates
# JSON values, lets it pass every comparison. Infinity is not JSON either, but both refuse it.
REPLACEMENTS = ["x", "", -1, 0, 0.5, 1, 2.0, 7.5, 1e12, float("inf"), True, False, None,
                [], ["a"], {}, {"k": 1}, {"vcpus": 1}]
UNKNOWN_KEYS = ["vcpu", "enable", "memroy", "server_group", "disk", "dest", "zzz", "migrateable"]
# Mutating these to another string changes what they refer to (a host name, an instance id): the
# loaders refuse that for reasons a schema cannot state (dangling or duplicate references).
REFERENCES = ("name", "host", "id", "instance", "source", "destination")


def _locations(node, path=()):
    """Every (container, key) below node, with the key path."""
    found = []
    if isinstance(node, dict):
        for key in sorted(node):
            found.append((node, key, path + (key,)))
            found.extend(_locations(node[key], path + (key,)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found.append((node, index, path + (index,)))
            found.extend(_locations(item, path + (index,)))
    return found


def mutate(doc, rng):
    """Break (or not) one place of doc in place: a new key, a removed key, or another value.

    The snapshot's host list as a whole is left in place (its items are mutated like the rest):
    removing or emptying it leaves every instance naming a host that is not there, a dangling
    reference that only the loader can see (found by hypothesis: hosts deleted, instances kept).
    """
    places = [p for p in _locations(doc) if p[2] != ("hosts",)]
    container, key, path = places[rng.randrange(len(places))]
    kind = rng.randrange(3)
    if kind == 0 and isinstance(container, dict):
        container[rng.choice(UNKNOWN_KEYS)] = rng.choice(REPLACEMENTS[:8])
    elif kind == 1 and isinstance(container, dict):
        del container[key]
    else:
        value = rng.choice(REPLACEMENTS)
        if key in REFERENCES and isinstance(value, str) and len(path) > 1:
            value = 3
        container[key] = value


def _snapshot_accepted(doc):
    try:
        snap.from_dict(doc)
        return True
    except snap.SnapshotError:
        return False


def _plan_accepted(doc):
    try:
        moves_from_plan(doc)
        return True
    except ValueError:
        return False


def _agree(doc, loader, validator):
    mine = loader(copy.deepcopy(doc))
    theirs = validator.is_valid(doc)
    assert mine == theirs, "loader %s, jsonschema %s on %s" % (
        "accepts" if mine else "refuses", "accepts" if theirs else "refuses", json.dumps(doc)[:2000])
    return mine


def _plan_doc(cloud, rng):
    strategy = rng.choice(["balance", "overload", "consolidate"])
    model = snap.from_dict(cloud)
    plan = json.loads(json.dumps(make_plan(model, strategy, {"max_moves": 0, "cooldown": 0}).to_dict()))
    return plan


@settings(max_examples=150, deadline=None)
@given(cloud=clouds, seed=st.integers(0, 2 ** 32 - 1), mutations=st.integers(0, 3))
def test_snapshot_loader_and_jsonschema_agree(cloud, seed, mutations):
    rng = random.Random(seed)
    doc = copy.deepcopy(cloud)
    for _n in range(mutations):
        mutate(doc, rng)
    _agree(doc, _snapshot_accepted, SNAPSHOT_CHECK)


@settings(max_examples=100, deadline=None)
@given(cloud=clouds, seed=st.integers(0, 2 ** 32 - 1), mutations=st.integers(0, 3))
def test_plan_loader_and_jsonschema_agree(cloud, seed, mutations):
    rng = random.Random(seed)
    doc = _plan_doc(cloud, rng)
    for _n in range(mutations):
        mutate(doc, rng)
    _agree(doc, _plan_accepted, PLAN_CHECK)


def test_agreement_over_400_counted_documents():
    # The same generator with fixed seeds, counted: both sides of the contract are exercised.
    outcomes = {"snapshot": [0, 0], "plan": [0, 0]}
    for seed in range(200):
        rng = random.Random(seed)
        cloud = random_cloud(seed, hosts=rng.randint(2, 6), per_host=rng.randint(1, 4))
        doc = copy.deepcopy(cloud)
        for _n in range(rng.choice([0, 0, 1, 1, 2])):
            mutate(doc, rng)
        outcomes["snapshot"][_agree(doc, _snapshot_accepted, SNAPSHOT_CHECK)] += 1
        doc = _plan_doc(cloud, rng)
        for _n in range(rng.choice([0, 0, 1, 1, 2])):
            mutate(doc, rng)
        outcomes["plan"][_agree(doc, _plan_accepted, PLAN_CHECK)] += 1
    for kind, (refused, accepted) in outcomes.items():
        assert refused + accepted == 200
        assert refused >= 40 and accepted >= 40, (kind, refused, accepted)


# ---------------------------------------------------------------- what an operator mistypes

def base():
    g = group("g1", "anti-affinity", ["i1"])
    return snapshot([host("c1", cpu=0.5, memory=0.5), host("c2")],
                    [instance("i1", "c1", groups=[g])])


@pytest.mark.parametrize("mutate_doc, message", [
    (lambda d: d["hosts"][0]["allocation_ratio"].update(vcpu=4.0),
     "hosts[0].allocation_ratio.vcpu: unknown key; known: vcpus, memory_mb, disk_gb (did you mean vcpus?)"),
    (lambda d: d["hosts"][0]["reserved"].update(ram=2048),
     "hosts[0].reserved.ram: unknown key; known: vcpus, memory_mb, disk_gb"),
    (lambda d: d["instances"][0]["flavor"].update(disk=20),
     "instances[0].flavor.disk: unknown key; known: name, vcpus, memory_mb, disk_gb (did you mean disk_gb?)"),
    (lambda d: d["hosts"][1].update(enable=False), "hosts[1].enable: unknown key; known: name,"),
    (lambda d: d["hosts"][1].update(enable=False), "(did you mean enabled?)"),
    (lambda d: d["instances"][0].update(migrateable=False), "(did you mean migratable?)"),
    (lambda d: d["instances"][0].update(server_group=[]), "instances[0].server_group: unknown key"),
    (lambda d: d["instances"][0].update(server_group=[]), "(did you mean server_groups?)"),
    (lambda d: d["hosts"][0]["load"].update(memroy=0.3),
     "hosts[0].load.memroy: unknown key; known: cpu, memory, disk_read_bytes_per_s, disk_write_bytes_per_s"
     " (did you mean memory?)"),
    (lambda d: d.update(hostz=[]), "hostz: unknown key; known: version, taken_at, sources, hosts, instances"
     " (did you mean hosts?)"),
    (lambda d: d["sources"].update(weigths={"cpu": 1}), "sources.weigths: unknown key"),
    (lambda d: d["hosts"][0]["load"].update(cpu=7.5), "hosts[0].load.cpu: expected a number from 0 to 1, got 7.5"),
    (lambda d: d["instances"][0]["load"].update(memory=1.2),
     "instances[0].load.memory: expected a number from 0 to 1, got 1.2"),
    (lambda d: d["hosts"][0]["capacity"].update(memory_mb=2 ** 40),
     "hosts[0].capacity.memory_mb: expected a number from 0 to 67108864, got 1099511627776"),
    (lambda d: d["hosts"][0]["capacity"].update(vcpus=float("inf")), "hosts[0].capacity.vcpus: expected a number"),
    (lambda d: d["hosts"][0]["allocation_ratio"].update(vcpus=float("nan")),
     "hosts[0].allocation_ratio.vcpus: expected a number > 0 and <= 1000, got nan"),
    (lambda d: d["instances"][0]["metadata"].update({"leveller:pin": True}) if "metadata" in d["instances"][0]
     else d["instances"][0].update(metadata={"leveller:pin": True}),
     "instances[0].metadata.leveller:pin: expected a string, got True"),
    (lambda d: d.update(version=None), "version: expected 1, got None"),
])
def test_mistakes_are_refused_naming_the_field_and_the_fix(mutate_doc, message):
    data = base()
    mutate_doc(data)
    with pytest.raises(snap.SnapshotError) as exc:
        snap.from_dict(data)
    assert message in str(exc.value)


def test_files_that_are_not_snapshots_are_refused_without_a_traceback(tmp_path):
    latin = tmp_path / "latin1.json"
    latin.write_bytes(json.dumps(base()).replace("vm-i1", "vm-\u00e9").encode("latin-1"))
    with pytest.raises(snap.SnapshotError, match=r"^snapshot_file: .*latin1.json is not UTF-8 text \(byte \d+\)"):
        snap.load_file(str(latin))
    with pytest.raises(snap.SnapshotError, match=r"^snapshot_file: .* is a directory"):
        snap.load_file(str(tmp_path))
    nan = tmp_path / "nan.json"
    nan.write_text(json.dumps(base()).replace('"cpu": 0.5', '"cpu": NaN'))
    with pytest.raises(snap.SnapshotError, match=r"^hosts\[0\]\.load\.cpu: expected a number from 0 to 1, got nan"):
        snap.load_file(str(nan))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(base()))
    assert snap.load_file(str(good)).hosts[0].load.cpu == 0.5


def test_a_generated_and_a_gathered_style_snapshot_follow_the_contract():
    # What hypervisor_load_info writes from Nova, Prometheus and libvirt (sources included).
    data = base()
    data["sources"] = {
        "nova": {"url": "http://127.0.0.1:8774/v2.1", "microversion": "2.95",
                 "instances_on_unknown_hosts": {"gone": ["u9"]}},
        "placement": {"url": "http://127.0.0.1:8778", "microversion": "1.14"},
        "prometheus": {"url": "http://127.0.0.1:9090", "queries": {"cpu": "q1", "memory": "q2"},
                       "last_sample_query": None, "window": "5m", "time": 1764000000.123,
                       "instance_units": {}, "host_label": "instance", "staleness": 180},
        "libvirt": {"uris": {"c1": "qemu+tcp://c1/system"}, "interval": 5.0},
        "weights": {"cpu": 1.0, "memory": 0.5},
    }
    data["hosts"][0]["capacity_unknown"] = ["disk_gb"]
    data["hosts"][0]["load"].update(disk_read_bytes_per_s=1024.0, disk_write_bytes_per_s=0)
    snap.from_dict(data)
    SNAPSHOT_CHECK.validate(data)
    assert not math.isnan(snap.from_dict(data).hosts[0].load.cpu)


# ---------------------------------------------------------------- the weights reach the planner

def test_the_gatherers_weights_are_the_planners_defaults():
    data = snapshot([host("a", cpu=0.9, memory=0.1), host("b", cpu=0.1, memory=0.9)],
                    [instance("i%d" % n, "a", vcpus=8, cpu=0.9) for n in range(3)])
    data["sources"] = {"weights": {"cpu": 1.0, "memory": 0.0}}
    model = snap.from_dict(data)
    params = make_plan(model, "balance", {}).to_dict()["params"]
    assert (params["weight_cpu"], params["weight_memory"]) == (1.0, 0.0)
    # a weight given to the planner wins over the snapshot's
    params = make_plan(model, "balance", {"weight_memory": 2.0}).to_dict()["params"]
    assert (params["weight_cpu"], params["weight_memory"]) == (1.0, 2.0)
    # and they change the plan: memory-blind, the plan moves CPU off a
    blind = make_plan(model, "balance", {"min_load": 0}).to_dict()
    data["sources"] = {}
    both = make_plan(snap.from_dict(data), "balance", {"min_load": 0}).to_dict()
    assert blind["before"]["spread"] != both["before"]["spread"]


# ---------------------------------------------------------------- the guide's tables

def _table_fields(text, heading):
    """The ``names`` in the first column of the first table after a section heading."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line == heading and i + 1 < len(lines) and set(lines[i + 1]) <= set("=-") and lines[i + 1])
    borders = [i for i in range(start + 2, len(lines)) if lines[i].startswith("==") and "  " in lines[i]][:3]
    width = len(lines[borders[0]].split("  ")[0])
    names = set()
    for line in lines[borders[1] + 1:borders[2]]:
        first = line[:width]
        names.update(part.strip("`[]") for part in first.replace(",", " ").split() if part.startswith("``"))
    return names


@pytest.mark.parametrize("heading, properties", [
    ("Top level", schema.SNAPSHOT["properties"]),
    ("Host", schema.SNAPSHOT["properties"]["hosts"]["items"]["properties"]),
    ("Instance", schema.SNAPSHOT["properties"]["instances"]["items"]["properties"]),
    ("The plan", schema.PLAN["properties"]),
])
def test_the_reference_tables_list_exactly_the_schemas_fields(heading, properties):
    with open(os.path.join(ROOT, "docs", "docsite", "rst", "snapshot_plan_reference.rst")) as handle:
        text = handle.read()
    assert _table_fields(text, heading) == set(properties)


def test_the_reference_names_every_field_of_a_move():
    with open(os.path.join(ROOT, "docs", "docsite", "rst", "snapshot_plan_reference.rst")) as handle:
        text = handle.read()
    section = text[text.index("``moves[]``"):text.index("``waves``  ")]
    for field in schema.PLAN["properties"]["moves"]["items"]["properties"]:
        assert "``%s``" % field in section, field
