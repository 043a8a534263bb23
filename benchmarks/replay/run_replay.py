# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PlanetLab replay benchmark: CloudSim's setup, day files, reference policies, two rule sets.

    python benchmarks/replay/run_replay.py                        # every day in the data dir
    python benchmarks/replay/run_replay.py --day 20110303.csv.gz --rules real
    python benchmarks/replay/run_replay.py --policies lr-mmt-1.2 --rules both --check

``make replay DAY=<file.csv.gz> RULES=cloudsim|real|both`` runs this. The data directory is
--data-dir, else $PLANETLAB_DIR, else ../shared/data/planetlab beside the checkout, else $LEVELLER_HOME/data/planetlab; a --day that is not a path
is looked up there. For each day and rule set it prints a table beside CloudSim's figures of the
same day (when there are some: CloudSim rules, the days of benchmarks/replay/reference.json),
writes benchmarks/results/replay-<day>-<rules>.json, and ends with ONE JSON line: the headline
policy's figures (--headline, default the last of --policies) -- with several days or rule sets,
energy, migrations, ping-pong and planner time are summed, max_migrations_per_vm and
wall_seconds are the largest, slatah, pdm and slav the mean -- and every run under "runs".

--check exits 1 when a calibration row misses its tolerance (energy and migrations 5 %, SLATAH
and PDM 25 %, reference.json) or when a real-rules run refused a move or broke RAM.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import atexit
import glob
import json
import os
import platform
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)


def _import_collection():
    """Make ansible_collections.cloudops.leveller importable (a private link if need be)."""
    try:
        import ansible_collections.cloudops.leveller.plugins.module_utils._replay  # noqa: F401
        return
    except ImportError:
        pass
    for name in list(sys.modules):
        if name == "ansible_collections" or name.startswith("ansible_collections."):
            del sys.modules[name]
    root = tempfile.mkdtemp(prefix="leveller-replay-")
    atexit.register(shutil.rmtree, root, True)
    os.makedirs(os.path.join(root, "ansible_collections", "cloudops"))
    os.symlink(TOP, os.path.join(root, "ansible_collections", "cloudops", "leveller"))
    sys.path.insert(0, root)


_import_collection()

from ansible_collections.cloudops.leveller.plugins.module_utils import _replay as replay  # noqa: E402
from ansible_collections.cloudops.leveller.plugins.module_utils import _timeline as timeline  # noqa: E402
import planetlab  # noqa: E402
import cloudsim_policies  # noqa: E402
import check_replay  # noqa: E402

REFERENCE = os.path.join(HERE, "reference.json")
KEYS = ("energy_kwh", "migrations", "slatah", "pdm", "slav", "max_migrations_per_vm", "ping_pong",
        "plan_seconds", "wall_seconds", "cpu_seconds")


def data_dir(given):
    if given:
        return given
    if os.environ.get("PLANETLAB_DIR"):
        return os.environ["PLANETLAB_DIR"]
    beside = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "planetlab"))
    if os.path.isdir(beside):   # the traces beside the checkout
        return beside
    home = os.environ.get("LEVELLER_HOME") or os.path.join(os.path.expanduser("~"), ".cache",
                                                           "cloudops-leveller")
    return os.path.join(home, "data", "planetlab")


def day_files(days, directory):
    if not days:
        found = sorted(glob.glob(os.path.join(directory, "*.csv.gz")))
        if not found:
            sys.exit("no day files (*.csv.gz) in %s: give --day FILE, --data-dir DIR or set "
                     "PLANETLAB_DIR" % directory)
        return found
    files = []
    for day in days:
        for candidate in (day, os.path.join(directory, day), os.path.join(directory, day + ".csv.gz")):
            if os.path.isfile(candidate):
                files.append(candidate)
                break
        else:
            sys.exit("day file %s not found (looked in the current directory and %s)" % (day, directory))
    return files


def policies(names):
    """name -> (placement, schedule); CloudSim's reference policies and the collection's."""
    result = []
    for name in names:
        if name in cloudsim_policies.NAMES or name.startswith(("thr-mmt-", "lr-mmt-")):
            result.append((name, lambda n=name: cloudsim_policies.policy(n)))
        else:
            import leveller_schedules
            result.append((name, lambda n=name: leveller_schedules.schedule(n)))
    return result


def run_one(path, rules, name, make, keep_log):
    hosts, vms = planetlab.load(path)
    placement, schedule = make()
    rp = replay.Replay(hosts, vms, placement, schedule, replay.RULES[rules], planetlab.INTERVAL,
                       keep_log=keep_log)
    result = rp.run()
    result["policy"] = name
    result["day"] = planetlab.day_name(path)
    if keep_log:
        problems = check_replay.check(rp.log, [h.ram_mb for h in hosts], [v.ram_mb for v in vms],
                                      ram_enforced=replay.RULES[rules].ram_every_move)
        result["checker"] = {"events": len(rp.log), "problems": len(problems),
                             "first": problems[:5]}
    return result


def pct(ours, ref):
    if ref == 0:
        return 0.0 if ours == 0 else None
    return (ours - ref) / ref * 100.0


def compare(result, reference):
    """Per metric: CloudSim's figure and the difference in percent."""
    if not reference:
        return None
    return dict((key, {"cloudsim": reference[key], "diff_pct": pct(result[key], reference[key])})
                for key in ("energy_kwh", "migrations", "slatah", "pdm", "slav"))


def within(result, reference, tolerance):
    misses = []
    for key, tol in sorted(tolerance.items()):
        ref = reference[key]
        ours = result[key]
        if ref == 0:
            if ours != 0:
                misses.append("%s %.6g (CloudSim 0)" % (key, ours))
        elif abs(ours - ref) / ref > tol:
            misses.append("%s %.6g vs %.6g (%+.1f %%, tolerance %d %%)"
                          % (key, ours, ref, pct(ours, ref), tol * 100))
    return misses


def _fmt_pct(value):
    return "" if value is None else "%+.1f%%" % value


def table(rows):
    header = ("day", "rules", "policy", "energy kWh", "CloudSim", "diff", "migrations", "CloudSim",
              "diff", "SLATAH %", "CloudSim", "PDM %", "CloudSim", "SLAV %", "CloudSim",
              "max/VM", "ping-pong", "plan s", "wall s", "cpu s")
    lines = [header]
    for r in rows:
        c = r.get("cloudsim") or {}

        def ref(key, scale=1.0, fmt="%.2f"):
            return fmt % (c[key]["cloudsim"] * scale) if key in c else ""

        lines.append((
            r["day"], r["rules"], r["policy"], "%.2f" % r["energy_kwh"], ref("energy_kwh"),
            _fmt_pct(c["energy_kwh"]["diff_pct"]) if c else "",
            "%d" % r["migrations"], ref("migrations", fmt="%d"),
            _fmt_pct(c["migrations"]["diff_pct"]) if c else "",
            "%.3f" % (r["slatah"] * 100), ref("slatah", 100, "%.3f"),
            "%.4f" % (r["pdm"] * 100), ref("pdm", 100, "%.4f"),
            "%.5f" % (r["slav"] * 100), ref("slav", 100, "%.5f"),
            "%d" % r["max_migrations_per_vm"], "%d" % r["ping_pong"],
            "%.1f" % r["plan_seconds"], "%.1f" % r["wall_seconds"], "%.1f" % r["cpu_seconds"]))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = []
    for number, line in enumerate(lines):
        out.append("  ".join(str(v).rjust(w) if i >= 3 else str(v).ljust(w)
                             for i, (v, w) in enumerate(zip(line, widths))))
        if number == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# The targets of issue 20 against LR-MMT-1.2 on the same day and rules: energy at most 0.8 x,
# migrations at most 1/10, SLAV at most 1/20; no VM moved more than 8 times.
TARGETS = {"energy_kwh": 0.8, "migrations": 0.1, "slav": 0.05}
MAX_MOVES_PER_VM = 8


def versus(rows, reference):
    """Each run of ours beside LR-MMT-1.2 (the run of this table, else CloudSim's figure under
    CloudSim rules): the ratios and whether each target of issue 20 is met."""
    lr = [r for r in rows if r["policy"] == "lr-mmt-1.2"]
    base = lr[0] if lr else (reference or {}).get("lr-mmt-1.2")
    ours = [r for r in rows if r["policy"].startswith("leveller")]
    if not base or not ours:
        return ""
    lines = ["vs LR-MMT-1.2 (%s): energy <= 0.8x, migrations <= 1/10, SLAV <= 1/20, max/VM <= %d"
             % ("this table" if lr else "CloudSim's figures", MAX_MOVES_PER_VM)]
    real = [r for r in ours if r["rules"] != "cloudsim"]
    if real:
        # issue 20's targets are set under CloudSim rules; under real rules RAM binds both
        # policies and no peer figure exists: the ratios are shown, not judged
        lines[0] = ("vs LR-MMT-1.2 (this table), real rules: ratios for reference only (the targets "
                    "are set under CloudSim rules; here RAM binds both, no peer figure exists)")
        for r in real:
            parts = []
            for key, label in (("energy_kwh", "energy"), ("migrations", "migrations"), ("slav", "SLAV")):
                ratio = r[key] / base[key] if base[key] else float("inf")
                parts.append("%s %s" % (label, ("%.3fx" % ratio) if key == "energy_kwh"
                                        else ("1/%.1f" % (1 / ratio) if ratio else "0")))
            parts.append("max/VM %d" % r["max_migrations_per_vm"])
            lines.append("  %s %s %s: %s" % (r["day"], r["rules"], r["policy"], ", ".join(parts)))
        return "\n".join(lines)
    for r in ours:
        parts = []
        for key, label in (("energy_kwh", "energy"), ("migrations", "migrations"), ("slav", "SLAV")):
            ratio = r[key] / base[key] if base[key] else float("inf")
            ok = ratio <= TARGETS[key]
            shown = ("%.3fx" % ratio) if key == "energy_kwh" else ("1/%.1f" % (1 / ratio) if ratio else "0")
            parts.append("%s %s %s" % (label, shown, "met" if ok else "MISSED"))
        ok = r["max_migrations_per_vm"] <= MAX_MOVES_PER_VM
        parts.append("max/VM %d %s" % (r["max_migrations_per_vm"], "met" if ok else "MISSED"))
        lines.append("  %s %s %s: %s" % (r["day"], r["rules"], r["policy"], ", ".join(parts)))
    return "\n".join(lines)


def headline(runs, name):
    chosen = [r for r in runs if r["policy"] == name]
    if not chosen:
        return {}
    line = {"policy": name, "days": sorted(set(r["day"] for r in chosen)),
            "rules": sorted(set(r["rules"] for r in chosen))}
    for key in ("energy_kwh", "migrations", "ping_pong", "plan_seconds", "gib_moved"):
        line[key] = sum(r[key] for r in chosen)
    for key in ("max_migrations_per_vm", "wall_seconds", "cpu_seconds"):
        line[key] = max(r[key] for r in chosen)
    for key in ("slatah", "pdm", "slav"):
        line[key] = sum(r[key] for r in chosen) / len(chosen)
    return line


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--day", action="append", default=[],
                        help="a day file (path, or name in the data dir); repeatable; default all")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--rules", default="cloudsim", choices=("cloudsim", "real", "both"))
    parser.add_argument("--policies", default=",".join(cloudsim_policies.NAMES + ("leveller-frontier",)),
                        help="comma-separated: dvfs, thr-mmt-<t>, lr-mmt-<s>, or a schedule of "
                             "benchmarks/replay/leveller_schedules.py")
    parser.add_argument("--headline", default=None, help="the policy of the final JSON line")
    parser.add_argument("--out", default=os.path.join(TOP, "benchmarks", "results"))
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a calibration row misses its tolerance")
    parser.add_argument("--no-checker", action="store_true",
                        help="skip the independent RAM / VM-count check of the move log")
    args = parser.parse_args(argv)

    directory = data_dir(args.data_dir)
    files = day_files(args.day, directory)
    rule_sets = ("cloudsim", "real") if args.rules == "both" else (args.rules,)
    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    with open(REFERENCE) as handle:
        ref = json.load(handle)
    runs = []
    failures = []
    os.makedirs(args.out, exist_ok=True)
    for path in files:
        day = planetlab.day_name(path)
        for rules in rule_sets:
            rows = []
            for name, make in policies(names):
                result = run_one(path, rules, name, make, keep_log=not args.no_checker)
                reference = ref["figures"].get(day, {}).get(name) if rules == "cloudsim" else None
                result["cloudsim"] = compare(result, reference)
                if reference and args.check:
                    for miss in within(result, reference, ref["tolerance"]):
                        failures.append("%s %s %s: %s" % (day, rules, name, miss))
                checked = result.get("checker")
                if checked and checked["problems"]:
                    failures.append("%s %s %s: the checker found %d problems, first: %s"
                                    % (day, rules, name, checked["problems"], checked["first"][:1]))
                if rules == "real" and result["refused_moves"]:
                    failures.append("%s real %s: %d moves refused (%s)" % (
                        day, name, result["refused_moves"], result["refused_reasons"]))
                rows.append(result)
                runs.append(result)
                print("%s %s %s: %.1f s" % (day, rules, name, result["wall_seconds"]),
                      file=sys.stderr)
            print()
            print(table(rows))
            against = versus(rows, ref["figures"].get(day) if rules == "cloudsim" else None)
            if against:
                print()
                print(against)
            document = {"day": day, "file": os.path.basename(path), "rules": rules,
                        "python": platform.python_version(), "machine": platform.machine(),
                        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "runs": rows}
            with open(os.path.join(args.out, "replay-%s-%s.json" % (day, rules)), "w") as handle:
                json.dump(document, handle, indent=1, sort_keys=True)
                handle.write("\n")
            picture = os.path.join(args.out, "replay-%s-%s.svg" % (day, rules))
            with open(picture, "w") as handle:
                handle.write(timeline.timeline_svg(
                    [dict(r, name=r["policy"]) for r in rows],
                    "PlanetLab %s, %s rules: hosts on and overloaded over the day" % (day, rules),
                    "800 hosts, %d VMs, 5-minute ticks; every policy replayed by the calibrated simulator"
                    % rows[0]["vms"] if rows else None))
                handle.write("\n")
            print()
            print("picture: %s" % os.path.relpath(picture))
    for failure in failures:
        print("CHECK: " + failure, file=sys.stderr)
    line = headline(runs, args.headline or names[-1])
    line["runs"] = [dict((k, r[k]) for k in ("day", "rules", "policy") + KEYS) for r in runs]
    print()
    print(json.dumps(line, sort_keys=True))
    return 1 if failures and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
