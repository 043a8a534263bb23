# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An independent checker: replays a plan on a snapshot and counts every broken rule.

Written from the snapshot and plan contracts only; it deliberately shares no code with the
planner (plugins/module_utils), so a bug there cannot hide itself here. It works on the plain
JSON dicts. Waves are replayed as Nova would run them: during a wave every migrating instance
holds resources (and its server-group slot) on both its source and its destination.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

KEYS = ("vcpus", "memory_mb", "disk_gb")
TOLERANCE = 1e-6


def _when(text):
    text = text.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    value = datetime.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value


def _num(mapping, key, default):
    if not mapping or mapping.get(key) is None:
        return default
    return float(mapping[key])


def _pinned(inst):
    value = (inst.get("metadata") or {}).get("leveller:pin")
    if value is not None and str(value).strip().lower() in ("true", "yes", "1"):
        return True
    return "leveller-pin" in (inst.get("tags") or [])


def _groups_of(inst):
    """An instance's server groups, each once: a snapshot may list the same group twice."""
    seen = set()
    result = []
    for group in inst.get("server_groups") or []:
        if group["id"] not in seen:
            seen.add(group["id"])
            result.append(group)
    return result


def check(snapshot, plan):
    """Return {"violations": n, "by_kind": {kind: n}, "examples": [...]} for plan on snapshot."""
    params = plan.get("params") or {}
    found = {}
    examples = []

    def bad(kind, text):
        found[kind] = found.get(kind, 0) + 1
        if len(examples) < 20:
            examples.append("%s: %s" % (kind, text))

    hosts = dict((h["name"], h) for h in snapshot.get("hosts") or [])
    room = {}
    used = {}
    for name, host in hosts.items():
        room[name] = [(_num(host.get("capacity"), k, 0.0) - _num(host.get("reserved"), k, 0.0))
                      * _num(host.get("allocation_ratio"), k, 1.0) for k in KEYS]
    where = {}
    insts = {}
    for inst in snapshot.get("instances") or []:
        insts[inst["id"]] = inst
        where[inst["id"]] = inst["host"]
    for name, host in hosts.items():
        if host.get("used") is not None:
            used[name] = [_num(host["used"], k, 0.0) for k in KEYS]
        else:
            used[name] = [0.0, 0.0, 0.0]
    if any(h.get("used") is None for h in hosts.values()):
        for inst in insts.values():
            if hosts[inst["host"]].get("used") is None:
                for i, k in enumerate(KEYS):
                    used[inst["host"]][i] += _num(inst.get("flavor"), k, 0.0)

    groups = {}
    for inst in insts.values():
        for group in _groups_of(inst):
            entry = groups.setdefault(group["id"], {"policy": group["policy"], "members": set(),
                                                    "limit": (group.get("rules") or {}).get("max_server_per_host")})
            entry["members"].add(inst["id"])
    # Members per host for every group, kept up to date as waves end.
    on_host = {}
    for gid, group in groups.items():
        on_host[gid] = {}
        for member in group["members"]:
            on_host[gid][where[member]] = on_host[gid].get(where[member], 0) + 1

    def soft_measure(gid):
        counts = on_host[gid]
        if groups[gid]["policy"] == "soft-anti-affinity":
            return sum(n - 1 for n in counts.values() if n > 1)
        return len([n for n in counts.values() if n])

    initial_soft = dict((gid, soft_measure(gid)) for gid, g in groups.items()
                        if g["policy"] in ("soft-anti-affinity", "soft-affinity"))
    initial_hosts = dict((gid, len(on_host[gid])) for gid in groups)
    scope = params.get("scope") or {}
    exclude = set(params.get("exclude") or [])
    cooldown = params.get("cooldown") or 0
    taken = _when(snapshot["taken_at"])

    def in_scope(host):
        if scope.get("az") and host.get("az") not in scope["az"]:
            return False
        if scope.get("aggregate") and not set(scope["aggregate"]) & set(host.get("aggregates") or []):
            return False
        if scope.get("hosts") and host["name"] not in scope["hosts"] and \
                host.get("hypervisor_hostname") not in scope["hosts"]:
            return False
        return True

    def usable(host):
        return (host.get("enabled", True) is not False and host.get("up", True) is not False
                and not host.get("forced_down") and in_scope(host))

    moves = plan.get("moves") or []
    if params.get("max_moves") and len(moves) > params["max_moves"]:
        bad("budget", "%d moves > max_moves %d" % (len(moves), params["max_moves"]))
    gib = sum(float(m["flavor"]["memory_mb"]) for m in moves) / 1024.0
    if params.get("max_gib") and gib > params["max_gib"] + TOLERANCE:
        bad("budget", "%.1f GiB > max_gib %s" % (gib, params["max_gib"]))
    moved = set()
    waves = {}
    for move in moves:
        waves.setdefault(move["wave"], []).append(move)
    for wave in sorted(waves):
        batch = waves[wave]
        if len(batch) > params.get("max_parallel", len(batch)):
            bad("wave", "wave %d has %d moves > max_parallel" % (wave, len(batch)))
        per_host = {}
        for move in batch:
            for name in (move["source"], move["destination"]):
                per_host[name] = per_host.get(name, 0) + 1
        for name, n in sorted(per_host.items()):
            if n > params.get("max_per_host", n):
                bad("wave", "wave %d: %s in %d moves > max_per_host" % (wave, name, n))
        # While a wave runs, every migrating instance holds resources on both of its hosts.
        holding = dict((name, list(used[name])) for name in per_host if name in used)
        group_hold = {}
        done = []
        for move in batch:
            ident = move["instance"]
            inst = insts.get(ident)
            src, dst = hosts.get(move["source"]), hosts.get(move["destination"])
            if inst is None or src is None or dst is None:
                bad("unknown", "%s: unknown instance or host" % ident)
                continue
            done.append((move, inst))
            if where[ident] != move["source"]:
                bad("stale", "%s is on %s, not %s" % (ident, where[ident], move["source"]))
            if ident in moved:
                bad("moved_twice", ident)
            moved.add(ident)
            if ident in exclude or inst.get("name") in exclude:
                bad("excluded", ident)
            if _pinned(inst):
                bad("pinned", ident)
            if inst.get("migratable") is False:
                bad("not_migratable", ident)
            if inst.get("status", "ACTIVE") not in ("ACTIVE", "PAUSED") or inst.get("task_state") \
                    or inst.get("locked"):
                bad("state", "%s is %s/%s" % (ident, inst.get("status"), inst.get("task_state")))
            if cooldown and inst.get("last_moved_at"):
                if (taken - _when(inst["last_moved_at"])).total_seconds() < cooldown:
                    bad("cooldown", ident)
            if not usable(dst):
                bad("destination_state", "%s -> %s" % (ident, dst["name"]))
            if not usable(src):
                bad("source_state", "%s from %s" % (ident, src["name"]))
            if not params.get("cross_az") and (src.get("az") or "") != (dst.get("az") or ""):
                bad("az", "%s: %s -> %s" % (ident, src.get("az"), dst.get("az")))
            if params.get("keep_aggregates", True) and \
                    sorted(src.get("aggregates") or []) != sorted(dst.get("aggregates") or []):
                bad("aggregate", "%s: %s -> %s" % (ident, src["name"], dst["name"]))
            for i, k in enumerate(KEYS):
                holding[dst["name"]][i] += _num(inst.get("flavor"), k, 0.0)
            for group in _groups_of(inst):
                hold = group_hold.setdefault(group["id"], {})
                hold[dst["name"]] = hold.get(dst["name"], 0) + 1
        for name in sorted(holding):
            for i, k in enumerate(KEYS):
                if holding[name][i] > room[name][i] + TOLERANCE and holding[name][i] > used[name][i] + TOLERANCE:
                    bad("capacity", "wave %d: %s %s %.0f > %.0f" % (wave, name, k, holding[name][i], room[name][i]))
        for gid, incoming in sorted(group_hold.items()):
            if groups[gid]["policy"] == "anti-affinity":
                limit = groups[gid]["limit"] or 1
                for name, n in sorted(incoming.items()):
                    total = on_host[gid].get(name, 0) + n
                    if total > limit:
                        bad("anti_affinity", "wave %d: group %s has %d on %s" % (wave, gid, total, name))
        # The wave ends: the migrated instances are now on their destinations only.
        for move, inst in done:
            for i, k in enumerate(KEYS):
                amount = _num(inst.get("flavor"), k, 0.0)
                used[move["source"]][i] -= amount
                used[move["destination"]][i] += amount
            where[inst["id"]] = move["destination"]
            for group in _groups_of(inst):
                counts = on_host[group["id"]]
                counts[move["source"]] -= 1
                if not counts[move["source"]]:
                    del counts[move["source"]]
                counts[move["destination"]] = counts.get(move["destination"], 0) + 1
        for gid in sorted(group_hold):
            if groups[gid]["policy"] == "affinity" and len(on_host[gid]) > max(1, initial_hosts[gid]):
                bad("affinity", "wave %d: group %s spread over %d hosts" % (wave, gid, len(on_host[gid])))
    for gid, value in sorted(initial_soft.items()):
        if soft_measure(gid) > value:
            bad(groups[gid]["policy"].replace("-", "_"), "group %s is worse after the plan" % gid)
    return {"violations": sum(found.values()), "by_kind": found, "examples": examples}
