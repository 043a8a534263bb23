# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The snapshot: every fact the planner needs about hosts and instances, version 1.

A snapshot is plain JSON. ``validate`` checks a dict and names the offending field,
``from_dict`` turns it into dataclasses with every default filled in, ``to_dict`` goes back,
and ``digest`` fingerprints the placement-relevant state so an executor can refuse a plan made
from a snapshot that no longer matches the cloud.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ansible_collections.cloudops.leveller.plugins.module_utils import _schema as schema

SCHEMA_VERSION = 1
RESOURCES = schema.RESOURCE_KEYS
METRICS = ("cpu", "memory")
POLICIES = tuple(schema.POLICIES)
LOAD_SOURCES = tuple(schema.LOAD_SOURCES)
PIN_METADATA_KEY = "leveller:pin"
PIN_METADATA_VALUES = ("true", "yes", "1")
PIN_TAG = "leveller-pin"
# The host an instance was drained or evacuated from, to go back to (strategy home).
HOME_METADATA_KEY = "leveller:home"
MAX_FILE_BYTES = 512 * 2 ** 20


def pinned_by(metadata, tags):
    """Why an instance with this metadata and these tags is pinned, or None (planner and executors)."""
    value = metadata.get(PIN_METADATA_KEY)
    if value is not None and str(value).strip().lower() in PIN_METADATA_VALUES:
        return "pinned by metadata %s" % PIN_METADATA_KEY
    if PIN_TAG in tags:
        return "pinned by tag %s" % PIN_TAG
    return None


class SnapshotError(ValueError):
    """A snapshot does not follow the contract; the message starts with the field path."""


@dataclass
class Resources:
    vcpus: float = 0
    memory_mb: float = 0
    disk_gb: float = 0

    def to_dict(self):
        return {"vcpus": self.vcpus, "memory_mb": self.memory_mb, "disk_gb": self.disk_gb}


@dataclass
class Load:
    cpu: Optional[float] = None
    memory: Optional[float] = None

    def to_dict(self):
        return {"cpu": self.cpu, "memory": self.memory}


@dataclass
class ServerGroup:
    id: str
    policy: str
    name: Optional[str] = None
    max_server_per_host: Optional[int] = None
    members: List[str] = field(default_factory=list)

    def to_dict(self):
        rules = {}
        if self.max_server_per_host is not None:
            rules["max_server_per_host"] = self.max_server_per_host
        return {"id": self.id, "name": self.name, "policy": self.policy, "rules": rules,
                "members": list(self.members)}


@dataclass
class Host:
    name: str
    capacity: Resources
    hypervisor_hostname: Optional[str] = None
    az: Optional[str] = None
    aggregates: List[str] = field(default_factory=list)
    enabled: bool = True
    up: bool = True
    forced_down: bool = False
    disabled_reason: Optional[str] = None
    allocation_ratio: Resources = field(default_factory=lambda: Resources(1.0, 1.0, 1.0))
    reserved: Resources = field(default_factory=Resources)
    used: Resources = field(default_factory=Resources)
    load: Load = field(default_factory=Load)
    load_source: str = "none"
    instances: int = 0

    def schedulable(self, resource):
        """(capacity - reserved) * allocation_ratio for one resource key."""
        return ((getattr(self.capacity, resource) - getattr(self.reserved, resource))
                * getattr(self.allocation_ratio, resource))

    @property
    def receivable(self):
        return self.enabled and self.up and not self.forced_down

    def to_dict(self):
        return {
            "name": self.name, "hypervisor_hostname": self.hypervisor_hostname, "az": self.az,
            "aggregates": list(self.aggregates), "enabled": self.enabled, "up": self.up,
            "forced_down": self.forced_down, "disabled_reason": self.disabled_reason,
            "capacity": self.capacity.to_dict(), "allocation_ratio": self.allocation_ratio.to_dict(),
            "reserved": self.reserved.to_dict(), "used": self.used.to_dict(),
            "load": self.load.to_dict(), "load_source": self.load_source, "instances": self.instances,
        }


@dataclass
class Instance:
    id: str
    host: str
    flavor: Resources
    name: Optional[str] = None
    flavor_name: Optional[str] = None
    project: Optional[str] = None
    status: str = "ACTIVE"
    task_state: Optional[str] = None
    power_state: Optional[str] = None
    locked: bool = False
    load: Load = field(default_factory=Load)
    server_groups: List[ServerGroup] = field(default_factory=list)
    metadata: Dict[str, Any] = field(default_factory=dict)
    tags: List[str] = field(default_factory=list)
    migratable: bool = True
    not_migratable_reason: Optional[str] = None
    last_moved_at: Optional[str] = None

    @property
    def pinned_by(self):
        """Why the instance is pinned by its own metadata or tags, or None."""
        return pinned_by(self.metadata, self.tags)

    def to_dict(self):
        flavor = self.flavor.to_dict()
        flavor["name"] = self.flavor_name
        return {
            "id": self.id, "name": self.name, "host": self.host, "project": self.project,
            "status": self.status, "task_state": self.task_state, "power_state": self.power_state,
            "locked": self.locked, "flavor": flavor, "load": self.load.to_dict(),
            "server_groups": [g.to_dict() for g in self.server_groups],
            "metadata": dict(self.metadata), "tags": list(self.tags), "migratable": self.migratable,
            "not_migratable_reason": self.not_migratable_reason, "last_moved_at": self.last_moved_at,
        }


@dataclass
class Snapshot:
    taken_at: str
    hosts: List[Host] = field(default_factory=list)
    instances: List[Instance] = field(default_factory=list)
    sources: Dict[str, Any] = field(default_factory=dict)
    version: int = SCHEMA_VERSION

    def to_dict(self):
        return {"version": self.version, "taken_at": self.taken_at, "sources": self.sources,
                "hosts": [h.to_dict() for h in self.hosts],
                "instances": [i.to_dict() for i in self.instances]}


# ---------------------------------------------------------------- loading

def _fail(path, expected, value):
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise SnapshotError("%s: expected %s, got %s" % (path, expected, shown))


def parse_time(value, path="taken_at"):
    """Parse an ISO-8601 timestamp (``Z`` or an offset; naive means UTC) to an aware datetime."""
    if not isinstance(value, str):
        _fail(path, "an ISO-8601 timestamp", value)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        _fail(path, "an ISO-8601 timestamp such as 2026-11-22T22:00:00Z", value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


def _given(raw, key, default):
    """The value of an optional field; null means not given."""
    value = raw.get(key)
    return default if value is None else value


def _resources(raw, default=0):
    if raw is None:
        return None
    return Resources(_given(raw, "vcpus", default), _given(raw, "memory_mb", default),
                     _given(raw, "disk_gb", default))


def _load(raw):
    if raw is None:
        return Load()
    return Load(raw.get("cpu"), raw.get("memory"))


def _server_group(raw):
    limit = (raw.get("rules") or {}).get("max_server_per_host")
    return ServerGroup(id=raw["id"], policy=raw["policy"], name=raw.get("name"),
                       max_server_per_host=None if limit is None else int(limit),
                       members=list(raw.get("members") or []))


def _host(raw):
    name = raw["name"]
    return Host(
        name=name, capacity=_resources(raw["capacity"]),
        hypervisor_hostname=_given(raw, "hypervisor_hostname", name),
        az=raw.get("az"),
        aggregates=sorted(set(raw.get("aggregates") or [])),
        enabled=_given(raw, "enabled", True),
        up=_given(raw, "up", True),
        forced_down=_given(raw, "forced_down", False),
        disabled_reason=raw.get("disabled_reason"),
        allocation_ratio=_resources(raw.get("allocation_ratio"), 1.0) or Resources(1.0, 1.0, 1.0),
        reserved=_resources(raw.get("reserved")) or Resources(),
        load=_load(raw.get("load")),
        load_source=_given(raw, "load_source", "none"),
        instances=int(raw.get("instances") or 0),
    )


def _instance(raw, index, host_names):
    path = "instances[%d]" % index
    if raw["host"] not in host_names:
        _fail(path + ".host", "the name of a host in hosts[]", raw["host"])
    last_moved_at = raw.get("last_moved_at")
    if last_moved_at is not None:
        parse_time(last_moved_at, path + ".last_moved_at")
    ident = raw["id"]
    return Instance(
        id=ident, host=raw["host"], flavor=_resources(raw["flavor"]),
        name=_given(raw, "name", ident),
        flavor_name=raw["flavor"].get("name"),
        project=raw.get("project"),
        status=_given(raw, "status", "ACTIVE"),
        task_state=raw.get("task_state"),
        power_state=raw.get("power_state"),
        locked=_given(raw, "locked", False),
        load=_load(raw.get("load")),
        server_groups=[_server_group(g) for g in raw.get("server_groups") or []],
        metadata=dict(raw.get("metadata") or {}),
        tags=list(raw.get("tags") or []),
        migratable=_given(raw, "migratable", True),
        not_migratable_reason=raw.get("not_migratable_reason"),
        last_moved_at=last_moved_at,
    )


def from_dict(data):
    """Validate a snapshot dict and return a Snapshot; raises SnapshotError naming the field.

    The contract is ``_schema.SNAPSHOT`` (every key known, every number finite and in range);
    on top of it: host names and instance ids are unique, each instance names a host of the
    snapshot, and timestamps are real dates.
    """
    if not isinstance(data, dict):
        _fail("snapshot", "a mapping", data)
    try:
        schema.check(data, schema.SNAPSHOT)
    except schema.SchemaError as exc:
        raise SnapshotError(str(exc))
    parse_time(data["taken_at"])
    hosts = []
    used_given = {}
    names = set()
    for index, raw in enumerate(data.get("hosts") or []):
        host = _host(raw)
        if host.name in names:
            _fail("hosts[%d].name" % index, "a unique host name", host.name)
        names.add(host.name)
        hosts.append(host)
        used_given[host.name] = _resources(raw.get("used"))
    instances = []
    ids = set()
    counts = dict.fromkeys(names, 0)
    derived = dict((name, [0, 0, 0]) for name in names)
    for index, raw in enumerate(data.get("instances") or []):
        instance = _instance(raw, index, names)
        if instance.id in ids:
            _fail("instances[%d].id" % index, "a unique instance id", instance.id)
        ids.add(instance.id)
        instances.append(instance)
        counts[instance.host] += 1
        total = derived[instance.host]
        total[0] += instance.flavor.vcpus
        total[1] += instance.flavor.memory_mb
        total[2] += instance.flavor.disk_gb
    for host in hosts:
        # Placement allocations when given; otherwise what the listed instances' flavors claim.
        used = used_given[host.name]
        host.used = used if used is not None else Resources(*derived[host.name])
        if not host.instances:
            host.instances = counts[host.name]
    return Snapshot(taken_at=data["taken_at"], hosts=hosts, instances=instances,
                    sources=dict(data.get("sources") or {}), version=SCHEMA_VERSION)


def validate(data):
    """Raise SnapshotError (message starts with the field path) when data is not a valid snapshot."""
    from_dict(data)


def to_dict(snapshot):
    """The snapshot as a JSON-ready dict with every default filled in."""
    return snapshot.to_dict()


def load_file(path):
    """Read a snapshot from a JSON (or, when PyYAML is present, YAML) file and validate it."""
    if os.path.isdir(path):
        raise SnapshotError("snapshot_file: %s is a directory; give the snapshot file written by "
                            "hypervisor_load_info (its snapshot, saved as JSON)" % path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except (IOError, OSError) as exc:
        raise SnapshotError("snapshot_file: cannot read %s: %s" % (path, exc))
    if len(raw) > MAX_FILE_BYTES:
        raise SnapshotError("snapshot_file: %s is larger than %d MiB; a snapshot of 10,000 hosts is about "
                            "100 MiB: is it the right file?" % (path, MAX_FILE_BYTES // 2 ** 20))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SnapshotError("snapshot_file: %s is not UTF-8 text (byte %d): save the snapshot as UTF-8 JSON"
                            % (path, exc.start))
    try:
        data = json.loads(text)
    except ValueError as json_error:
        try:
            import yaml
        except ImportError:
            raise SnapshotError("snapshot_file: %s is not valid JSON: %s" % (path, json_error))
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SnapshotError("snapshot_file: %s is neither JSON nor YAML: %s" % (path, exc))
    return from_dict(data)


def digest(snapshot):
    """sha256 of the placement-relevant state: instance -> host, flavors, host state."""
    hosts = sorted([h.name, bool(h.enabled), bool(h.up), bool(h.forced_down)] for h in snapshot.hosts)
    instances = sorted([i.id, i.host, float(i.flavor.vcpus), float(i.flavor.memory_mb),
                        float(i.flavor.disk_gb)] for i in snapshot.instances)
    text = json.dumps({"hosts": hosts, "instances": instances, "version": SCHEMA_VERSION},
                      sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
