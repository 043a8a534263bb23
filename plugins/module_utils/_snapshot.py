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
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

SCHEMA_VERSION = 1
RESOURCES = ("vcpus", "memory_mb", "disk_gb")
METRICS = ("cpu", "memory")
POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
LOAD_SOURCES = ("prometheus", "libvirt", "none")
PIN_METADATA_KEY = "leveller:pin"
PIN_METADATA_VALUES = ("true", "yes", "1")
PIN_TAG = "leveller-pin"


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
        value = self.metadata.get(PIN_METADATA_KEY)
        if value is not None and str(value).strip().lower() in PIN_METADATA_VALUES:
            return "pinned by metadata %s" % PIN_METADATA_KEY
        if PIN_TAG in self.tags:
            return "pinned by tag %s" % PIN_TAG
        return None

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


# ---------------------------------------------------------------- validation helpers

def _fail(path, expected, value):
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise SnapshotError("%s: expected %s, got %s" % (path, expected, shown))


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_INF = float("inf")


def _number(obj, key, path, default=None, required=False, minimum=0.0, positive=False):
    value = obj.get(key)
    if value is None:
        if required:
            raise SnapshotError("%s.%s: required field is missing" % (path, key))
        return default
    kind = type(value)
    if (kind is int or kind is float) and value < _INF and (value > 0 if positive else value >= minimum):
        return value  # the common case, checked cheaply (NaN fails every comparison)
    if positive:
        if not _is_number(value) or value <= 0:
            _fail("%s.%s" % (path, key), "a number > 0", value)
    elif not _is_number(value) or (minimum is not None and value < minimum):
        _fail("%s.%s" % (path, key), "a number >= %s" % (minimum if minimum else 0), value)
    return value


def _string(obj, key, path, default=None, required=False, choices=None):
    if key not in obj or obj[key] is None:
        if required:
            raise SnapshotError("%s.%s: required field is missing" % (path, key))
        return default
    value = obj[key]
    if not isinstance(value, str) or (required and not value):
        _fail("%s.%s" % (path, key), "a non-empty string" if required else "a string", value)
    if choices is not None and value not in choices:
        _fail("%s.%s" % (path, key), "one of %s" % ", ".join(choices), value)
    return value


def _bool(obj, key, path, default):
    if key not in obj or obj[key] is None:
        return default
    value = obj[key]
    if not isinstance(value, bool):
        _fail("%s.%s" % (path, key), "true or false", value)
    return value


def _mapping(obj, key, path, required=False):
    if key not in obj or obj[key] is None:
        if required:
            raise SnapshotError("%s.%s: required field is missing" % (path, key))
        return None
    value = obj[key]
    if not isinstance(value, dict):
        _fail("%s.%s" % (path, key), "a mapping", value)
    return value


def _string_list(obj, key, path):
    if key not in obj or obj[key] is None:
        return []
    value = obj[key]
    if not isinstance(value, list):
        _fail("%s.%s" % (path, key), "a list of strings", value)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            _fail("%s.%s[%d]" % (path, key, index), "a string", item)
    return list(value)


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


def _resources(obj, key, path, required=False, default=0, positive=False, need=("vcpus", "memory_mb")):
    raw = _mapping(obj, key, path, required=required)
    if raw is None:
        return None
    sub = "%s.%s" % (path, key)
    values = {}
    for resource in RESOURCES:
        values[resource] = _number(raw, resource, sub, default=default,
                                   required=required and resource in need, positive=positive)
    return Resources(values["vcpus"], values["memory_mb"], values["disk_gb"])


def _load(obj, key, path):
    raw = _mapping(obj, key, path)
    if raw is None:
        return Load()
    sub = "%s.%s" % (path, key)
    return Load(_number(raw, "cpu", sub), _number(raw, "memory", sub))


def _server_groups(obj, path):
    if "server_groups" not in obj or obj["server_groups"] is None:
        return []
    raw = obj["server_groups"]
    if not isinstance(raw, list):
        _fail(path + ".server_groups", "a list", raw)
    groups = []
    for index, item in enumerate(raw):
        sub = "%s.server_groups[%d]" % (path, index)
        if not isinstance(item, dict):
            _fail(sub, "a mapping", item)
        rules = _mapping(item, "rules", sub) or {}
        limit = None
        if rules.get("max_server_per_host") is not None:
            limit = rules["max_server_per_host"]
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                _fail(sub + ".rules.max_server_per_host", "an integer >= 1", limit)
        groups.append(ServerGroup(
            id=_string(item, "id", sub, required=True),
            policy=_string(item, "policy", sub, required=True, choices=POLICIES),
            name=_string(item, "name", sub),
            max_server_per_host=limit,
            members=_string_list(item, "members", sub)))
    return groups


def _host(raw, index):
    path = "hosts[%d]" % index
    if not isinstance(raw, dict):
        _fail(path, "a mapping", raw)
    name = _string(raw, "name", path, required=True)
    capacity = _resources(raw, "capacity", path, required=True)
    instances = raw.get("instances")
    if instances is not None and (not isinstance(instances, int) or isinstance(instances, bool)
                                  or instances < 0):
        _fail(path + ".instances", "an integer >= 0", instances)
    host = Host(
        name=name, capacity=capacity,
        hypervisor_hostname=_string(raw, "hypervisor_hostname", path, default=name),
        az=_string(raw, "az", path),
        aggregates=sorted(set(_string_list(raw, "aggregates", path))),
        enabled=_bool(raw, "enabled", path, True),
        up=_bool(raw, "up", path, True),
        forced_down=_bool(raw, "forced_down", path, False),
        disabled_reason=_string(raw, "disabled_reason", path),
        allocation_ratio=_resources(raw, "allocation_ratio", path, default=1.0, positive=True)
        or Resources(1.0, 1.0, 1.0),
        reserved=_resources(raw, "reserved", path) or Resources(),
        load=_load(raw, "load", path),
        load_source=_string(raw, "load_source", path, default="none", choices=LOAD_SOURCES),
        instances=instances or 0,
    )
    used = _resources(raw, "used", path)
    return host, used


def _instance(raw, index, host_names):
    path = "instances[%d]" % index
    if not isinstance(raw, dict):
        _fail(path, "a mapping", raw)
    ident = _string(raw, "id", path, required=True)
    host = _string(raw, "host", path, required=True)
    if host not in host_names:
        _fail(path + ".host", "the name of a host in hosts[]", host)
    flavor_raw = _mapping(raw, "flavor", path, required=True)
    flavor = _resources(raw, "flavor", path, required=True)
    metadata = _mapping(raw, "metadata", path) or {}
    last_moved_at = raw.get("last_moved_at")
    if last_moved_at is not None:
        parse_time(last_moved_at, path + ".last_moved_at")
    return Instance(
        id=ident, host=host, flavor=flavor,
        name=_string(raw, "name", path, default=ident),
        flavor_name=_string(flavor_raw, "name", path + ".flavor"),
        project=_string(raw, "project", path),
        status=_string(raw, "status", path, default="ACTIVE"),
        task_state=_string(raw, "task_state", path),
        power_state=_string(raw, "power_state", path),
        locked=_bool(raw, "locked", path, False),
        load=_load(raw, "load", path),
        server_groups=_server_groups(raw, path),
        metadata=dict(metadata),
        tags=_string_list(raw, "tags", path),
        migratable=_bool(raw, "migratable", path, True),
        not_migratable_reason=_string(raw, "not_migratable_reason", path),
        last_moved_at=last_moved_at,
    )


def from_dict(data):
    """Validate a snapshot dict and return a Snapshot; raises SnapshotError naming the field."""
    if not isinstance(data, dict):
        _fail("snapshot", "a mapping", data)
    version = data.get("version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        _fail("version", "%d (this planner reads snapshot version %d)" % (SCHEMA_VERSION, SCHEMA_VERSION),
              version)
    if data.get("taken_at") is None:
        raise SnapshotError("taken_at: required field is missing")
    parse_time(data["taken_at"])
    sources = _mapping(data, "sources", "snapshot") or {}
    for key in ("hosts", "instances"):
        if not isinstance(data.get(key, []), list):
            _fail(key, "a list", data.get(key))
    hosts = []
    used_given = {}
    names = set()
    for index, raw in enumerate(data.get("hosts") or []):
        host, used = _host(raw, index)
        if host.name in names:
            _fail("hosts[%d].name" % index, "a unique host name", host.name)
        names.add(host.name)
        hosts.append(host)
        used_given[host.name] = used
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
                    sources=dict(sources), version=SCHEMA_VERSION)


def validate(data):
    """Raise SnapshotError (message starts with the field path) when data is not a valid snapshot."""
    from_dict(data)


def to_dict(snapshot):
    """The snapshot as a JSON-ready dict with every default filled in."""
    return snapshot.to_dict()


def load_file(path):
    """Read a snapshot from a JSON (or, when PyYAML is present, YAML) file and validate it."""
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        raise SnapshotError("snapshot_file: cannot read %s: %s" % (path, exc))
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
