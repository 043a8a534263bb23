# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The snapshot and plan contracts, version 1: one source for the loader and the JSON Schemas.

``SNAPSHOT`` and ``PLAN`` are JSON Schemas (draft 2020-12) written as Python data. The loader
checks documents against them with ``check`` (a small validator for the keywords used here),
and ``docs/schema/*.json`` are these same dicts written out (``write_docs``; a unit test fails
when the files and this module differ). So the schema and the loader cannot drift: there is
one definition. Every object refuses keys it does not list, with the path, the known keys and
a "did you mean" for a near miss.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import difflib
import json
import math
import re

RESOURCE_KEYS = ("vcpus", "memory_mb", "disk_gb")
# Sizes above these are not a real host or flavor; they are typos (bytes for MiB, a stray 0).
MAX_VCPUS = 65536
MAX_MEMORY_MB = 2 ** 26          # 64 TiB
MAX_DISK_GB = 10 ** 8            # 100 PB (shared storage reported per host)
MAX_RATIO = 1000
MAX_FIGURE = 1e9                 # any other finite figure (scores, rates, counts)
MAX_RATE = 1e13                  # bytes per second
TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?$"
DIGEST = r"^sha256:[0-9a-f]{64}$"
POLICIES = ["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]
LOAD_SOURCES = ["prometheus", "libvirt", "none"]


# ---------------------------------------------------------------- schema builders

def _nullable(schema, nullable):
    if not nullable:
        return schema
    schema = dict(schema)
    if "enum" in schema:
        schema["enum"] = list(schema["enum"]) + [None]
    else:
        schema["type"] = [schema["type"], "null"]
    return schema


def num(minimum=0, maximum=MAX_FIGURE, exclusive=False, nullable=False, description=None):
    schema = {"type": "number", "maximum": maximum}
    schema["exclusiveMinimum" if exclusive else "minimum"] = minimum
    if description:
        schema["description"] = description
    return _nullable(schema, nullable)


def integer(minimum=0, maximum=MAX_FIGURE, nullable=False, description=None):
    schema = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if description:
        schema["description"] = description
    return _nullable(schema, nullable)


def string(nullable=False, min_length=0, pattern=None, enum=None, description=None):
    schema = {"enum": list(enum)} if enum else {"type": "string"}
    if min_length:
        schema["minLength"] = min_length
    if pattern:
        schema["pattern"] = pattern
    if description:
        schema["description"] = description
    return _nullable(schema, nullable)


def boolean(nullable=False, description=None):
    schema = {"type": "boolean"}
    if description:
        schema["description"] = description
    return _nullable(schema, nullable)


def array(items, nullable=False, description=None):
    schema = {"type": "array", "items": items}
    if description:
        schema["description"] = description
    return _nullable(schema, nullable)


def obj(properties, required=(), nullable=False, values=None, description=None):
    """An object with exactly these properties (or, with ``values``, any key holding such values)."""
    schema = {"type": "object", "properties": properties, "additionalProperties": values or False}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return _nullable(schema, nullable)


def resources(required=(), positive=False, nullable=False, scale=1, description=None):
    """vcpus, memory_mb, disk_gb, each bounded by what a real host could have (times ``scale``)."""
    tops = {"vcpus": MAX_VCPUS, "memory_mb": MAX_MEMORY_MB, "disk_gb": MAX_DISK_GB}
    if positive:
        props = dict((k, num(0, MAX_RATIO, exclusive=True)) for k in RESOURCE_KEYS)
    else:
        props = dict((k, num(0, tops[k] * scale)) for k in RESOURCE_KEYS)
    return obj(props, required=required, nullable=nullable, description=description)


def _fraction(description=None):
    return num(0, 1, nullable=True, description=description)


# ---------------------------------------------------------------- the snapshot

_HOST_LOAD = obj({
    "cpu": _fraction("Measured CPU load as a fraction (0..1) of the physical capacity."),
    "memory": _fraction("Measured memory load as a fraction (0..1) of the physical memory."),
    "disk_read_bytes_per_s": num(0, MAX_RATE, nullable=True),
    "disk_write_bytes_per_s": num(0, MAX_RATE, nullable=True),
}, nullable=True, description="Measured load; null or absent = unknown.")

_INSTANCE_LOAD = obj({
    "cpu": _fraction("Measured CPU load as a fraction (0..1) of the instance's own vCPUs."),
    "memory": _fraction("Measured memory load as a fraction (0..1) of the instance's own RAM."),
}, nullable=True, description="Measured load; null or absent = unknown.")

_SERVER_GROUP = obj({
    "id": string(min_length=1),
    "name": string(nullable=True),
    "policy": string(enum=POLICIES),
    "rules": obj({"max_server_per_host": integer(1, nullable=True)}, nullable=True),
    "members": array(string(), nullable=True),
}, required=("id", "policy"))

_HOST = obj({
    "name": string(min_length=1, description="Nova compute service host name; unique."),
    "hypervisor_hostname": string(nullable=True),
    "az": string(nullable=True),
    "aggregates": array(string(), nullable=True),
    "enabled": boolean(nullable=True),
    "up": boolean(nullable=True),
    "forced_down": boolean(nullable=True),
    "disabled_reason": string(nullable=True),
    "capacity": resources(required=("vcpus", "memory_mb"),
                          description="Physical capacity (Placement inventory total)."),
    "capacity_unknown": array(string(enum=RESOURCE_KEYS), nullable=True,
                              description="Resources whose capacity the source could not read (0 = not limited)."),
    "allocation_ratio": resources(positive=True, nullable=True),
    "reserved": resources(nullable=True),
    "used": resources(nullable=True, scale=MAX_RATIO, description="Placement allocations."),
    "load": _HOST_LOAD,
    "load_source": string(enum=LOAD_SOURCES, nullable=True),
    "instances": integer(nullable=True),
}, required=("name", "capacity"))

_FLAVOR = obj({
    "name": string(nullable=True),
    "vcpus": num(0, MAX_VCPUS),
    "memory_mb": num(0, MAX_MEMORY_MB),
    "disk_gb": num(0, MAX_DISK_GB),
}, required=("vcpus", "memory_mb"))

_INSTANCE = obj({
    "id": string(min_length=1, description="Instance UUID; unique."),
    "name": string(nullable=True),
    "host": string(min_length=1, description="The name of a host in hosts."),
    "project": string(nullable=True),
    "status": string(nullable=True),
    "task_state": string(nullable=True),
    "power_state": string(nullable=True),
    "locked": boolean(nullable=True),
    "flavor": _FLAVOR,
    "load": _INSTANCE_LOAD,
    "server_groups": array(_SERVER_GROUP, nullable=True),
    "metadata": obj({}, nullable=True, values=string()),
    "tags": array(string(), nullable=True),
    "migratable": boolean(nullable=True),
    "not_migratable_reason": string(nullable=True),
    "last_moved_at": string(nullable=True, pattern=TIMESTAMP),
}, required=("id", "host", "flavor"))

_SOURCES = obj({
    "nova": obj({
        "url": string(nullable=True), "microversion": string(nullable=True),
        "instances_on_unknown_hosts": obj({}, values=array(string())),
    }),
    "placement": obj({
        "url": string(nullable=True), "microversion": string(nullable=True),
        "unowned_allocations": obj({}, values=array(obj({
            "consumer": string(),
            "resources": resources(),
            "migration": obj({
                "id": integer(nullable=True), "status": string(nullable=True),
                "type": string(nullable=True), "instance": string(nullable=True),
                "source": string(nullable=True), "dest": string(nullable=True),
            }, nullable=True),
        }, required=("consumer", "resources"))), description=(
            "Per host, allocations on its resource provider that no instance Nova lists and no "
            "migration still under way owns (Placement, and so the scheduler, counts them as used).")),
    }),
    "prometheus": obj({
        "url": string(nullable=True),
        "queries": obj({}, values=string()),
        "last_sample_query": string(nullable=True),
        "window": string(nullable=True),
        "time": num(0, 1e11),
        "instance_units": obj({}, values=string()),
        "host_label": string(nullable=True),
        "staleness": integer(0, nullable=True),
    }),
    "libvirt": obj({
        "uris": obj({}, values=string()),
        "interval": num(0, 3600),
        "inventory": boolean(),
        "availability_zone": string(nullable=True),
        "capacity": string(),
        "flavors": string(),
        "server_groups": string(),
    }),
    "weights": obj({"cpu": num(0, 100), "memory": num(0, 100)},
                   description="The gatherer's weight_cpu / weight_memory: level_plan's defaults."),
    "generator": obj({"script": string(), "seed": integer(), "hosts": integer()},
                     description="A generated (what-if, benchmark) snapshot."),
    "at": obj({"loads_at": string(pattern=TIMESTAMP), "placement_at": string(pattern=TIMESTAMP)},
              required=("loads_at", "placement_at"),
              description="Loads read at a past time (the gatherer's at) on the placement of placement_at."),
}, nullable=True, description="Provenance: which cloud, which Prometheus, which queries; and the weights.")

SNAPSHOT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://cloudops.example.invalid/leveller/snapshot-v1.schema.json",
    "title": "cloudops.leveller snapshot, version 1",
    "description": "Everything the planner needs about hosts and instances. "
                   "See docs/docsite/rst/snapshot_plan_reference.rst. Generated from "
                   "plugins/module_utils/_schema.py: edit that, not this file.",
    "type": "object",
    "properties": {
        "version": {"const": 1},
        "taken_at": string(pattern=TIMESTAMP, description="ISO-8601; no offset means UTC."),
        "sources": _SOURCES,
        "hosts": array(_HOST),
        "instances": array(_INSTANCE),
    },
    "required": ["version", "taken_at"],
    "additionalProperties": False,
}


# ---------------------------------------------------------------- the plan

def _figures():
    host = obj({
        "score": num(-MAX_FIGURE), "cpu": num(-MAX_FIGURE), "memory": num(-MAX_FIGURE),
        "instances": integer(), "active": boolean(),
    }, required=("score", "cpu", "memory", "instances"))
    figure = num(-MAX_FIGURE, nullable=True)
    spread = obj({
        "max": figure, "min": figure, "ratio": figure, "stddev": figure, "mean": figure,
        "active_hosts": integer(),
        "cpu_max": figure, "cpu_stddev": figure, "memory_max": figure, "memory_stddev": figure,
    }, required=("max", "min", "ratio", "stddev", "mean", "active_hosts"))
    return obj({"hosts": obj({}, values=host), "spread": spread}, required=("hosts", "spread"),
               nullable=True)


_FIGURE = num(-MAX_FIGURE, nullable=True)

_MOVE = obj({
    "instance": string(min_length=1, description="Instance UUID."),
    "name": string(nullable=True),
    "source": string(min_length=1),
    "destination": string(min_length=1),
    "wave": integer(1),
    "kind": string(enum=["live", "cold"], description="live (default) or cold migration."),
    "reason": string(),
    "memory_mb": num(0, MAX_MEMORY_MB),
    "flavor": obj({"vcpus": num(0, MAX_VCPUS), "memory_mb": num(0, MAX_MEMORY_MB),
                   "disk_gb": num(0, MAX_DISK_GB)}, required=("vcpus", "memory_mb", "disk_gb")),
    "source_score_after": _FIGURE,
    "destination_score_after": _FIGURE,
}, required=("instance", "source", "destination"))

_SKIPPED = obj({
    "kind": string(enum=["host", "instance"]),
    "id": string(),
    "instance": string(),
    "name": string(nullable=True),
    "host": string(nullable=True),
    "reason": string(nullable=True),
    "blocking": boolean(),
    "home": string(description="home: the host the instance would go back to."),
}, required=("kind", "name", "reason"))

_POOL_BOUND = obj({
    "pool": string(), "hosts_used_before": integer(), "hosts_used_after": integer(),
    "hosts_needed_at_least": integer(), "gap": integer(-MAX_FIGURE), "cannot_be_emptied": integer(),
    "cannot_receive": integer(), "binding": string(nullable=True),
})

_BOUND = obj({
    # balance
    "cpu_max_at_least": _FIGURE, "memory_max_at_least": _FIGURE, "cpu_max_gap": _FIGURE,
    "memory_max_gap": _FIGURE,
    # overload
    "overloaded_before": integer(), "overloaded_after": integer(), "overloaded_at_least": integer(),
    # consolidate
    "hosts_used_before": integer(), "hosts_used_after": integer(), "hosts_needed_at_least": integer(),
    "gap": integer(-MAX_FIGURE), "freed": integer(), "max_load_after": _FIGURE,
    "by_pool": array(_POOL_BOUND),
    # drain
    "ram_to_copy_gib": _FIGURE, "bandwidth_mbps": _FIGURE, "parallelism": integer(),
    "makespan_s_at_least": _FIGURE, "makespan_s_estimate": _FIGURE, "makespan_gap_s": _FIGURE,
    "note": string(),
    # home
    "away": integer(), "already_home": integer(), "going_home": integer(), "cannot_go_home": integer(),
    "gib": _FIGURE,
}, nullable=True, description="Lower bounds the plan is measured against (keys by strategy).")

_SCOPE = obj({"az": array(string()), "aggregate": array(string()), "hosts": array(string())})


def _params():
    """The strategies' parameters, as level_plan echoes them (values checked by each strategy)."""
    figure = num(0, MAX_FIGURE)
    return obj({
        "weight_cpu": figure, "weight_memory": figure, "max_moves": integer(), "max_gib": figure,
        "cooldown": integer(), "cross_az": boolean(), "keep_aggregates": boolean(),
        "max_parallel": integer(1), "max_per_host": integer(1), "exclude": array(string()),
        "scope": _SCOPE,
        # balance
        "min_load": figure, "min_diff": figure, "min_gain": figure, "move_cost_gib": figure,
        "min_gain_per_gib": figure,
        # consolidate
        "max_load_after": figure, "max_hosts": integer(),
        # drain
        "hosts": array(string()), "use_empty_hosts": boolean(), "partial": boolean(),
        "bandwidth_mbps": figure,
        # overload
        "threshold": figure, "destination": string(enum=["headroom", "fullest"]),
    }, nullable=True)


PLAN = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://cloudops.example.invalid/leveller/plan-v1.schema.json",
    "title": "cloudops.leveller plan, version 1",
    "description": "Moves in waves with predicted figures. See "
                   "docs/docsite/rst/snapshot_plan_reference.rst. Generated from "
                   "plugins/module_utils/_schema.py: edit that, not this file.",
    "type": "object",
    "properties": {
        "version": {"const": 1},
        "strategy": string(min_length=1, description="The strategy that made the plan: balance, consolidate, "
                                                     "drain, home or overload (a hand-written plan names its "
                                                     "own)."),
        "params": _params(),
        "snapshot_digest": string(pattern=DIGEST, nullable=True),
        "snapshot_taken_at": string(pattern=TIMESTAMP, nullable=True,
                                    description="taken_at of the snapshot the plan was made from: executors "
                                                "refuse a plan older than their max_plan_age."),
        "snapshot_hosts": array(string(min_length=1),
                                description="The hosts of that snapshot: executors digest the live cloud "
                                            "over them to compare with snapshot_digest."),
        "moves": array(_MOVE),
        "waves": integer(),
        "before": _figures(),
        "after": _figures(),
        "bound": _BOUND,
        "skipped": array(_SKIPPED),
        "freed_hosts": array(string(), description="consolidate: the hosts the plan empties."),
        "drained_hosts": array(string(), description="drain: the hosts the plan empties."),
        "staying": array(_SKIPPED, description="drain: stopped instances that stay (not blocking)."),
        "summary": obj({
            "moves": integer(), "gib_moved": num(0, MAX_FIGURE), "acted": boolean(), "reason": string(),
        }, nullable=True),
    },
    "required": ["version", "moves"],
    "additionalProperties": False,
}


# ---------------------------------------------------------------- the validator

class SchemaError(ValueError):
    """A document breaks the contract; the message starts with the field path."""


def _shown(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "number": _is_number,
    "integer": lambda v: _is_number(v) and (isinstance(v, int) or (math.isfinite(v) and v == int(v))),
    "null": lambda v: v is None,
}


def expected(schema):
    """What a schema asks for, in words: 'a number from 0 to 1'."""
    if "const" in schema:
        return "%s" % json.dumps(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"] if v is not None)
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    words = []
    for kind in types:
        if kind in ("number", "integer"):
            word = "a number" if kind == "number" else "an integer"
            low = schema.get("minimum", schema.get("exclusiveMinimum"))
            high = schema.get("maximum")
            if high == MAX_FIGURE:
                high = None  # a sanity cap, not worth a word
            if low == -MAX_FIGURE:
                low = None
            if "exclusiveMinimum" in schema:
                word += " > %s" % _plain(low)
                if high is not None:
                    word += " and <= %s" % _plain(high)
            elif low is not None and high is not None:
                word += " from %s to %s" % (_plain(low), _plain(high))
            elif low is not None:
                word += " >= %s" % _plain(low)
            words.append(word)
        elif kind == "string":
            words.append("a non-empty string" if schema.get("minLength") else "a string")
        elif kind == "boolean":
            words.append("true or false")
        elif kind == "object":
            words.append("a mapping")
        elif kind == "array":
            words.append("a list of strings" if schema.get("items", {}).get("type") == "string" else "a list")
    # null is allowed where it means "not given": no need to say so
    return " or ".join(words) or "null"


def _plain(value):
    return "%d" % value if float(value).is_integer() and abs(value) < 1e15 else "%g" % value


def _path(parent, key):
    if isinstance(key, int):
        return "%s[%d]" % (parent, key)
    return "%s.%s" % (parent, key) if parent else key


def _where(node):
    """The field path of a node: nodes are the root prefix ('' or 'plan') or (parent, key)."""
    keys = []
    while isinstance(node, tuple):
        node, key = node
        keys.append(key)
    text = node
    for key in reversed(keys):
        text = _path(text, key)
    return text or "document"


def _fail(node, schema, value, words=None):
    raise SchemaError("%s: expected %s, got %s" % (_where(node), words or expected(schema), _shown(value)))


def unknown_key(path, key, known):
    """The message for a key the contract does not have, with a near miss when there is one."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5) if isinstance(key, str) else []
    if not close and isinstance(key, str):
        close = [k for k in known if k.startswith(key) or key.startswith(k)][:1]
    return "%s: unknown key; known: %s%s" % (
        _path(path, key), ", ".join(known) or "none", " (did you mean %s?)" % close[0] if close else "")


def _compile(schema):
    """A function (value, node) that raises SchemaError where value breaks schema.

    Checking a 200,000-instance snapshot walks millions of values: each schema node becomes a
    closure once, with the plain Python types tested first, so the walk costs little more than
    reading the document.
    """
    if "const" in schema:
        const = schema["const"]

        def check_const(value, node):
            if value.__class__ is bool or value != const:
                _fail(node, schema, value)
        return check_const
    if "enum" in schema:
        choices = schema["enum"]

        def check_enum(value, node):
            if value.__class__ is bool or value not in choices:
                _fail(node, schema, value)
        return check_enum
    kinds = schema["type"]
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    nullable = "null" in kinds
    kind = [k for k in kinds if k != "null"][0]
    if kind in ("number", "integer"):
        whole = kind == "integer"
        exclusive = "exclusiveMinimum" in schema
        low = schema["exclusiveMinimum"] if exclusive else schema.get("minimum", -math.inf)
        high = schema.get("maximum", math.inf)

        def check_number(value, node):
            cls = value.__class__
            if cls is int or (cls is float and (not whole or value.is_integer())):
                pass
            elif value is None and nullable:
                return
            elif not (_TYPES[kind](value)):
                _fail(node, schema, value)
            if not ((value > low if exclusive else value >= low) and value <= high):  # NaN fails
                _fail(node, schema, value)
        return check_number
    if kind == "string":
        shortest = schema.get("minLength", 0)
        pattern = re.compile(schema["pattern"]) if "pattern" in schema else None

        def check_string(value, node):
            if value.__class__ is not str and not isinstance(value, str):
                if value is None and nullable:
                    return
                _fail(node, schema, value)
            if len(value) < shortest:
                _fail(node, schema, value)
            if pattern is not None and not pattern.search(value):
                _fail(node, schema, value, _PATTERN_WORDS.get(pattern.pattern, "the form " + pattern.pattern))
        return check_string
    if kind == "boolean":
        def check_boolean(value, node):
            if value is not True and value is not False and not (value is None and nullable):
                _fail(node, schema, value)
        return check_boolean
    if kind == "array":
        item = _compile(schema["items"])

        def check_array(value, node):
            if value.__class__ is not list and not isinstance(value, list):
                if value is None and nullable:
                    return
                _fail(node, schema, value)
            for index, entry in enumerate(value):
                item(entry, (node, index))
        return check_array
    props = dict((key, _compile(sub)) for key, sub in schema.get("properties", {}).items())
    known = list(schema.get("properties", {}))
    required = tuple(schema.get("required", ()))
    extra = schema.get("additionalProperties", True)
    if isinstance(extra, dict):
        extra = _compile(extra)

    def check_object(value, node):
        if value.__class__ is not dict and not isinstance(value, dict):
            if value is None and nullable:
                return
            _fail(node, schema, value)
        for key in required:
            if key not in value:
                raise SchemaError("%s: required field is missing" % _path(_where(node) if node else "", key))
        for key, entry in value.items():
            sub = props.get(key)
            if sub is None:
                if extra is False:
                    raise SchemaError(unknown_key(_where(node) if node else "", key, known))
                if not isinstance(key, str):
                    _fail(node, {}, key, "keys that are strings")
                if extra is True:
                    continue
                sub = extra
            sub(entry, (node, key))
    return check_object


_COMPILED = {}


def check(value, schema, path=""):
    """Raise SchemaError naming the first place where ``value`` breaks ``schema``."""
    checker = _COMPILED.get(id(schema))
    if checker is None:
        checker = _COMPILED[id(schema)] = _compile(schema)
    checker(value, path)


_PATTERN_WORDS = {
    TIMESTAMP: "an ISO-8601 timestamp such as 2026-11-22T22:00:00Z",
    DIGEST: "sha256:<64 hex digits>",
}


def write_docs(folder):
    """Write both schemas as docs/schema/*.json (the files the docs and the tests point to)."""
    import os
    for name, schema in (("snapshot-v1.schema.json", SNAPSHOT), ("plan-v1.schema.json", PLAN)):
        with open(os.path.join(folder, name), "w") as handle:
            handle.write(as_text(schema))


def as_text(schema):
    """The schema as the committed file holds it."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
