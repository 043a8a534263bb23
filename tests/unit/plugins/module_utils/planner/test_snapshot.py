# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshot validation names the field; round trips; digest; the JSON schemas agree."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import json
import os

import jsonschema
import pytest
from hypothesis import given, settings

from ansible_collections.cloudops.leveller.benchmarks.generate import generate
from ansible_collections.cloudops.leveller.plugins.module_utils import _snapshot as snap
from ansible_collections.cloudops.leveller.plugins.module_utils._strategies import make_plan
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    clouds, group, host, instance, snapshot,
)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 5))


def schema(name):
    with open(os.path.join(ROOT, "docs", "schema", name)) as handle:
        return json.load(handle)


def base():
    g = group("g1", "anti-affinity", ["i1"])
    return snapshot([host("c1", cpu=0.5, memory=0.5), host("c2")],
                    [instance("i1", "c1", groups=[g])])


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(version=2), "version: expected 1"),
    (lambda d: d.pop("taken_at"), "taken_at: required field is missing"),
    (lambda d: d.update(taken_at="yesterday"), "taken_at: expected an ISO-8601 timestamp"),
    (lambda d: d.update(hosts={}), "hosts: expected a list"),
    (lambda d: d["hosts"][1]["capacity"].update(memory_mb="abc"),
     "hosts[1].capacity.memory_mb: expected a number from 0 to 67108864, got 'abc'"),
    (lambda d: d["hosts"][0]["capacity"].pop("vcpus"), "hosts[0].capacity.vcpus: required field is missing"),
    (lambda d: d["hosts"][0].pop("capacity"), "hosts[0].capacity: required field is missing"),
    (lambda d: d["hosts"][0]["allocation_ratio"].update(vcpus=0),
     "hosts[0].allocation_ratio.vcpus: expected a number > 0 and <= 1000, got 0"),
    (lambda d: d["hosts"][0]["load"].update(cpu=-0.1), "hosts[0].load.cpu: expected a number from 0 to 1, got -0.1"),
    (lambda d: d["hosts"][0].update(enabled="yes"), "hosts[0].enabled: expected true or false, got 'yes'"),
    (lambda d: d["hosts"][0].update(load_source="snmp"), "hosts[0].load_source: expected one of"),
    (lambda d: d["hosts"][1].update(name="c1"), "hosts[1].name: expected a unique host name"),
    (lambda d: d["hosts"][0].update(name=""), "hosts[0].name: expected a non-empty string"),
    (lambda d: d["instances"][0].update(host="nowhere"),
     "instances[0].host: expected the name of a host in hosts[], got 'nowhere'"),
    (lambda d: d["instances"][0]["flavor"].update(vcpus=True), "instances[0].flavor.vcpus: expected a number"),
    (lambda d: d["instances"][0]["server_groups"][0].update(policy="spread"),
     "instances[0].server_groups[0].policy: expected one of affinity, anti-affinity"),
    (lambda d: d["instances"][0]["server_groups"][0].update(rules={"max_server_per_host": 0}),
     "instances[0].server_groups[0].rules.max_server_per_host: expected an integer >= 1"),
    (lambda d: d["instances"][0].update(last_moved_at="soon"), "instances[0].last_moved_at: expected an ISO-8601"),
    (lambda d: d["instances"][0].update(tags=[1]), "instances[0].tags[0]: expected a string"),
    (lambda d: d["instances"].append(dict(d["instances"][0])), "instances[1].id: expected a unique instance id"),
    (lambda d: d["instances"][0].update(load={"cpu": float("nan")}), "instances[0].load.cpu: expected a number"),
])
def test_validation_names_the_field(mutate, message):
    data = base()
    mutate(data)
    with pytest.raises(snap.SnapshotError) as exc:
        snap.validate(data)
    assert str(exc.value).startswith(message)


def test_defaults_and_round_trip():
    data = snapshot([{"name": "c1", "capacity": {"vcpus": 8, "memory_mb": 1024}}],
                    [instance("i1", "c1", vcpus=2, memory_mb=512, disk_gb=5)])
    model = snap.from_dict(data)
    h = model.hosts[0]
    assert h.enabled and h.up and not h.forced_down and h.az is None
    assert h.allocation_ratio.vcpus == 1.0 and h.reserved.memory_mb == 0
    assert (h.used.vcpus, h.used.memory_mb, h.used.disk_gb) == (2, 512, 5)  # from the flavors
    assert h.instances == 1 and h.hypervisor_hostname == "c1"
    again = snap.from_dict(json.loads(json.dumps(snap.to_dict(model))))
    assert snap.to_dict(again) == snap.to_dict(model)
    assert snap.digest(again) == snap.digest(model)


def test_digest_tracks_placement_only():
    data = base()
    first = snap.digest(snap.from_dict(data))
    assert first.startswith("sha256:") and len(first) == 71
    data["instances"][0]["load"] = {"cpu": 0.9}
    data["sources"] = {"prometheus": {"url": "http://elsewhere:9090"}}
    assert snap.digest(snap.from_dict(data)) == first
    data["hosts"].reverse()
    assert snap.digest(snap.from_dict(data)) == first
    moved = copy.deepcopy(data)
    moved["instances"][0]["host"] = "c2"
    assert snap.digest(snap.from_dict(moved)) != first
    disabled = copy.deepcopy(data)
    disabled["hosts"][0]["enabled"] = False
    assert snap.digest(snap.from_dict(disabled)) != first


def test_pins():
    model = snap.from_dict(snapshot([host("c1")], [
        instance("a", "c1", metadata={"leveller:pin": "YES"}), instance("b", "c1", tags=["leveller-pin"]),
        instance("c", "c1", metadata={"leveller:pin": "no"})]))
    assert [i.pinned_by for i in model.instances] == [
        "pinned by metadata leveller:pin", "pinned by tag leveller-pin", None]


def test_load_file(tmp_path):
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(base()))
    assert snap.load_file(str(path)).hosts[0].name == "c1"
    yaml_path = tmp_path / "snap.yml"
    yaml_path.write_text("version: 1\ntaken_at: '2026-11-22T22:00:00Z'\nhosts: []\ninstances: []\n")
    assert snap.load_file(str(yaml_path)).hosts == []
    with pytest.raises(snap.SnapshotError, match="^snapshot_file: cannot read"):
        snap.load_file(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "taken_at": "2026-11-22T22:00:00Z", "hosts": [{"name": "x"}]}))
    with pytest.raises(snap.SnapshotError, match=r"^hosts\[0\].capacity: required"):
        snap.load_file(str(bad))


def test_generated_cloud_validates_against_both_schemas():
    data = generate(hosts=30, seed=7, per_host=10)
    snap.validate(data)
    jsonschema.validate(data, schema("snapshot-v1.schema.json"))
    model = snap.from_dict(data)
    jsonschema.validate(snap.to_dict(model), schema("snapshot-v1.schema.json"))
    for strategy in ("balance", "overload"):
        plan = json.loads(json.dumps(make_plan(model, strategy, {"max_moves": 0}).to_dict()))
        jsonschema.validate(plan, schema("plan-v1.schema.json"))


@settings(max_examples=50, deadline=None)
@given(cloud=clouds)
def test_random_clouds_agree_with_the_schema(cloud):
    jsonschema.validate(cloud, schema("snapshot-v1.schema.json"))
    plan = json.loads(json.dumps(make_plan(snap.from_dict(cloud), "balance", {}).to_dict()))
    jsonschema.validate(plan, schema("plan-v1.schema.json"))


def test_schema_rejects_what_the_validator_rejects():
    data = base()
    data["hosts"][1]["capacity"]["memory_mb"] = "abc"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema("snapshot-v1.schema.json"))
