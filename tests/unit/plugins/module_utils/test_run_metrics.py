# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metrics of a run: figures, rendering (checked by promtool), reading back, the Pushgateway and the textfile."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil
import stat
import subprocess

import pytest
import requests

from ansible_collections.cloudops.leveller.plugins.module_utils import _execute
from ansible_collections.cloudops.leveller.plugins.module_utils import _run_metrics as rm
from ansible_collections.cloudops.leveller.plugins.module_utils._report import measured_figures
from ansible_collections.cloudops.leveller.tests.unit.plugins.module_utils.planner.cloud import (
    host, instance, snapshot)

NOW = 1796623200.0  # 2026-12-07T06:00:00Z
SPREAD = {"max": 1.2, "min": 0.1, "ratio": 11.0, "stddev": 0.4, "mean": 0.6, "active_hosts": 3}
LABELS = [("playbook", "balance")]


def plan(moves=2, **top):
    doc = {"version": 1, "strategy": "balance", "snapshot_taken_at": "2026-12-07T05:59:00Z",
           "moves": [{"instance": "u%d" % i, "source": "c1", "destination": "c2", "memory_mb": 512 * i}
                     for i in range(1, moves + 1)],
           "before": {"hosts": {}, "spread": dict(SPREAD)},
           "after": {"hosts": {}, "spread": dict(SPREAD, max=0.7, ratio=0.75, stddev=0.1)}}
    doc.update(top)
    return doc


def result(*outcomes, **top):
    doc = {"changed": True, "failed": False, "msg": "...", "invocation": {"module_args": {}},
           "moves": [{"instance": "u%d" % i, "result": r, "seconds": s} for i, (r, s) in enumerate(outcomes, 1)]}
    doc.update(top)
    return doc


def promtool():
    path = shutil.which("promtool")
    if not path:
        pytest.fail("promtool is missing: install the Debian package prometheus (make deps does)")
    return path


def check_metrics(text):
    proc = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), proc.stdout + proc.stderr


def sample(text, line_start):
    found = [line for line in text.splitlines() if line.startswith(line_start + " ")]
    assert len(found) == 1, (line_start, text)
    return found[0].rsplit(" ", 1)[1]


# ---------------------------------------------------------------- figures

def test_every_executor_result_counts_under_one_state():
    assert set(rm.RESULT_STATE) == set(_execute.RESULTS)
    assert set(s for s in rm.RESULT_STATE.values() if s) <= set(rm.STATES)


def test_figures_of_a_run_count_each_move_once_under_its_state():
    figures = rm.run_figures(plan(6), result(("moved", 1.5), ("failed", 20.0), ("aborted", 600.2), ("skipped", None),
                                             (None, None), ("unresolved", 601.0)), now=NOW)
    assert figures["moves"] == {"planned": 6, "done": 1, "failed": 1, "aborted": 1, "skipped": 2, "unresolved": 1}
    assert figures["moved_memory_bytes"] == {"planned": 512 * 21 * 2 ** 20, "done": 512 * 2 ** 20}
    assert figures["move_seconds"] == [1.5, 20.0, 600.2, 601.0]
    assert figures["success"] is False
    assert figures["duration_seconds"] == 60.0
    assert figures["finished_at"] == NOW


@pytest.mark.parametrize("outcome, failed, success", [
    (result(("moved", 1.0)), None, True),
    (result(("moved", 1.0), ("aborted", 600.0)), None, False),
    (result(("unresolved", 600.0)), None, False),
    (result(("moved", 1.0), failed=True), None, False),        # the executor failed (journal, lock...)
    (result(("moved", 1.0)), True, False),                     # the caller knows better
    (result(("failed", 3.0)), False, True),
    ({}, None, True),                                           # nothing ran: nothing to do
    ({"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}, None, True),
    (result(("would move", None)), None, True),
])
def test_success_comes_from_the_result_unless_given(outcome, failed, success):
    assert rm.run_figures(plan(1), outcome, failed=failed, now=NOW)["success"] is success


def test_without_a_plan_the_planned_moves_are_the_executors():
    figures = rm.run_figures({}, result(("evacuated", 2.0), ("evacuated", 3.0)), now=NOW)
    assert figures["moves"]["planned"] == 2 and figures["moves"]["done"] == 2
    assert figures["duration_seconds"] is None
    assert figures["moved_memory_bytes"] == {"planned": 0, "done": 0}  # sizes come from the plan


def test_a_skipped_task_and_check_mode_results_count_as_nothing_run():
    skipped = rm.run_figures(plan(2), {"skipped": True, "changed": False}, now=NOW)
    assert skipped["moves"] == dict(rm.run_figures(plan(2), {}, now=NOW)["moves"])
    assert skipped["moves"]["done"] == 0 and skipped["move_seconds"] == []
    checked = rm.run_figures(plan(1), result(("would move", None)), now=NOW)
    assert sum(checked["moves"][s] for s in rm.STATES if s != "planned") == 0


def test_spreads_by_when_unknown_ones_left_out():
    measured = {"hosts": {}, "spread": dict(SPREAD, ratio=None, stddev=0.12, max=0.8)}
    figures = rm.run_figures(plan(1), {}, measured=measured, now=NOW)
    assert figures["spread"] == {"ratio": {"before": 11.0, "planned": 0.75},
                                 "stddev": {"before": 0.4, "planned": 0.1, "measured": 0.12},
                                 "max": {"before": 1.2, "planned": 0.7, "measured": 0.8}}


@pytest.mark.parametrize("bound, gaps", [
    ({"hosts_used_before": 5, "hosts_used_after": 3, "hosts_needed_at_least": 2, "gap": 1}, {"hosts_used": 1.0}),
    ({"cpu_max_at_least": 0.5, "cpu_max_gap": 0.02, "memory_max_gap": None}, {"cpu_max": 0.02}),
    ({"makespan_s_at_least": 40.0, "makespan_gap_s": 12.5}, {"makespan_seconds": 12.5}),
    ({"overloaded_before": 2, "overloaded_after": 0, "overloaded_at_least": 0}, {}),
    (None, {}),
])
def test_bound_gaps_by_goal(bound, gaps):
    assert rm.run_figures(plan(1, bound=bound), {}, now=NOW)["bound_gaps"] == gaps


def test_a_snapshot_from_the_future_gives_no_duration():
    assert rm.run_figures(plan(1, snapshot_taken_at="2026-12-07T07:00:00Z"), {}, now=NOW)["duration_seconds"] is None


# ---------------------------------------------------------------- rendering

def test_a_full_run_renders_metrics_promtool_accepts():
    figures = rm.run_figures(plan(3, bound={"cpu_max_gap": 0.0, "memory_max_gap": 0.01}),
                             result(("moved", 1.6), ("moved", 2.0), ("failed", 45.0)),
                             measured={"hosts": {}, "spread": dict(SPREAD, ratio=0.5)}, now=NOW)
    text = rm.render(figures, rm.previous_state([]), LABELS + [("cloud", "prod")])
    check_metrics(text)
    assert sample(text, 'cloudops_leveller_runs_total{playbook="balance",cloud="prod",result="failed"}') == "1"
    assert sample(text, 'cloudops_leveller_runs_total{playbook="balance",cloud="prod",result="success"}') == "0"
    assert sample(text, 'cloudops_leveller_last_run_success{playbook="balance",cloud="prod"}') == "0"
    assert sample(text, 'cloudops_leveller_moves{playbook="balance",cloud="prod",state="done"}') == "2"
    assert sample(text, 'cloudops_leveller_spread_ratio{playbook="balance",cloud="prod",when="measured"}') == "0.5"
    assert sample(text, 'cloudops_leveller_plan_bound_gap{playbook="balance",cloud="prod",goal="memory_max"}') == "0.01"
    assert sample(text, 'cloudops_leveller_run_duration_seconds{playbook="balance",cloud="prod"}') == "60"
    # a failed run that never succeeded has no time of a last success at all (no 1970 in dashboards)
    assert "cloudops_leveller_last_success_timestamp_seconds" not in text
    # the histogram: cumulative buckets, +Inf = count
    buckets = [sample(text, 'cloudops_leveller_move_duration_seconds_bucket{playbook="balance",cloud="prod",le="%s"}'
                      % le) for le in ("1", "2", "30", "60", "+Inf")]
    assert buckets == ["0", "2", "2", "3", "3"]
    assert sample(text, 'cloudops_leveller_move_duration_seconds_sum{playbook="balance",cloud="prod"}') == "48.6"


def test_a_run_with_nothing_to_do_renders_an_empty_histogram_promtool_accepts():
    text = rm.render(rm.run_figures({}, {}, now=NOW), rm.previous_state([]), LABELS)
    check_metrics(text)
    assert sample(text, 'cloudops_leveller_move_duration_seconds_count{playbook="balance"}') == "0"
    assert sample(text, 'cloudops_leveller_last_success_timestamp_seconds{playbook="balance"}') == str(int(NOW))
    assert "spread_ratio" not in text and "plan_bound_gap" not in text and "run_duration" not in text


def test_counters_and_the_last_success_carry_over_from_the_previous_text():
    first = rm.render(rm.run_figures(plan(2), result(("moved", 1.0), ("moved", 1.0)), now=NOW), rm.previous_state([]),
                      LABELS)
    failed = rm.run_figures(plan(1), result(("failed", 5.0)), now=NOW + 3600)
    second = rm.render(failed, rm.previous_state(rm.parse_exposition(first)), LABELS)
    check_metrics(second)
    assert sample(second, 'cloudops_leveller_runs_total{playbook="balance",result="success"}') == "1"
    assert sample(second, 'cloudops_leveller_runs_total{playbook="balance",result="failed"}') == "1"
    assert sample(second, 'cloudops_leveller_run_moves_total{playbook="balance",state="planned"}') == "3"
    assert sample(second, 'cloudops_leveller_run_moves_total{playbook="balance",state="done"}') == "2"
    assert sample(second, 'cloudops_leveller_run_moves_total{playbook="balance",state="failed"}') == "1"
    # the failed run keeps the time of the success before it; its own end is the last run
    assert sample(second, 'cloudops_leveller_last_success_timestamp_seconds{playbook="balance"}') == str(int(NOW))
    assert sample(second, 'cloudops_leveller_last_run_timestamp_seconds{playbook="balance"}') == str(int(NOW + 3600))
    # the last run's own figures replace the previous ones
    assert sample(second, 'cloudops_leveller_moves{playbook="balance",state="done"}') == "0"


def test_previous_values_that_are_not_counts_are_ignored():
    state = rm.previous_state([
        ("cloudops_leveller_runs_total", {"result": "success"}, float("nan")),
        ("cloudops_leveller_runs_total", {"result": "failed"}, -3.0),
        ("cloudops_leveller_runs_total", {"result": "maybe"}, 7.0),
        ("cloudops_leveller_run_moves_total", {"state": "done"}, 4.0),
        ("cloudops_leveller_last_success_timestamp_seconds", {}, float("inf")),
        ("other_metric", {"result": "success"}, 9.0),
    ])
    assert state["runs"] == {"success": 0.0, "failed": 0.0}
    assert state["moves"]["done"] == 4.0 and state["last_success"] is None


def test_label_values_are_escaped_and_read_back_unchanged():
    odd = 'a "quoted" \\ back\nslash, {braces}'
    text = rm.render(rm.run_figures({}, {}, now=NOW), rm.previous_state([]), LABELS + [("site", odd)])
    check_metrics(text)
    samples = rm.parse_exposition(text)
    assert all(labels["site"] == odd for _name, labels, _value in samples)
    assert ("cloudops_leveller_runs_total", {"playbook": "balance", "site": odd, "result": "success"}, 1.0) in samples


def test_parse_exposition_skips_what_is_not_a_sample():
    samples = rm.parse_exposition('# HELP x y\n\ngarbage line\nx{a="1"} not-a-number\nx 3 1700000000000\ny{} +Inf\n')
    assert samples == [("x", {}, 3.0), ("y", {}, float("inf"))]


# ---------------------------------------------------------------- inputs

@pytest.mark.parametrize("args, words", [
    (dict(playbook="evacuate compute1"), "playbook: 'evacuate compute1' is not a usable label"),
    (dict(playbook=""), "playbook: '' is not a usable label"),
    (dict(plan={"version": 1, "moves": [], "summary": {"moves": -1}}), "plan.summary.moves: expected"),
    (dict(measured={"hosts": {"c1": {"score": 1}}, "spread": dict(SPREAD)}), "measured.hosts.c1.cpu: required"),
    (dict(measured={"hosts": {}, "spread": dict(SPREAD), "taken_at": 5}), "measured.taken_at: 5 is not a time stamp"),
    (dict(result=[1]), "result: expected the registered result"),
    (dict(result={"failed": "yes"}), "result.failed: expected a boolean"),
    (dict(result={"moves": {"u1": "moved"}}), "result.moves: expected a list"),
    (dict(result={"moves": ["moved"]}), "result.moves[0]: expected a move"),
    (dict(result={"moves": [{"result": "moved", "seconds": float("nan")}]}), "result.moves[0].seconds"),
    (dict(labels={"__name__": "x"}), "labels: '__name__' is not a Prometheus label name"),
    (dict(labels={"job": "x"}), "use the job option"),
    (dict(labels={"cloud": ["a"]}), "labels.cloud: expected a non-empty string"),
    (dict(labels={"cloud": True}), "labels.cloud: expected a non-empty string"),
])
def test_bad_input_is_refused_naming_the_field(args, words):
    full = dict(playbook="balance", plan={}, result={}, measured={}, labels={})
    full.update(args)
    with pytest.raises(ValueError) as exc:
        rm.check_inputs(full["playbook"], full["plan"], full["result"], full["measured"], full["labels"])
    assert words in str(exc.value)


def test_what_the_measured_figures_filter_gives_is_accepted_as_measured():
    """The report role passes measured_figures' output as it is, taken_at included (make demo)."""
    cloud = snapshot([host("c1", cpu=0.5, memory=0.5), host("c2", cpu=0.1, memory=0.2)],
                     [instance("i1", "c1"), instance("i2", "c2")])
    measured = measured_figures(cloud, plan(1))
    assert measured["taken_at"] == cloud["taken_at"]
    rm.check_inputs("balance", plan(1), result(("moved", 1.0)), measured, {})
    figures = rm.run_figures(plan(1), {}, measured=measured, now=NOW)
    assert figures["spread"]["ratio"]["measured"] == measured["spread"]["ratio"]


def test_a_registered_result_with_its_other_keys_is_accepted():
    rm.check_inputs("evacuate-compute1.example.org", plan(2), result(("moved", 1.0), (None, None), lock={}, diff={}),
                    {"hosts": {}, "spread": dict(SPREAD)}, {"cloud": "prod", "region": 2})


# ---------------------------------------------------------------- the Pushgateway

def test_group_path_uses_base64_for_values_that_are_not_plain_segments():
    assert rm.group_path("cloudops_leveller", [("playbook", "balance"), ("cloud", "prod-1.a")]) == \
        "/metrics/job/cloudops_leveller/playbook/balance/cloud/prod-1.a"
    assert rm.group_path("j", [("site", "a/b")]) == "/metrics/job/j/site@base64/YS9i"
    assert rm.group_path("j", [("site", "..")]) == "/metrics/job/j/site@base64/Li4="
    assert rm.group_path("j w", []) == "/metrics/job@base64/aiB3"


@pytest.mark.parametrize("url, words", [
    ("pushgateway:9091", "is not an http(s) URL"),
    ("http://", "is not an http(s) URL"),
    ("https://u:pw-SECRET@pg:9091/metrics/job/x", "give the base URL (https://pg:9091 without /metrics/...)"),
    ("http://pg:9091/metrics", "give the base URL"),
])
def test_pushgateway_url_must_be_a_base_url(url, words):
    with pytest.raises(ValueError) as exc:
        rm.pushgateway_base(url)
    assert words in str(exc.value) and "pw-SECRET" not in str(exc.value)


def test_pushgateway_base_keeps_a_route_prefix_and_drops_credentials():
    assert rm.pushgateway_base(" https://u:p@gw.example.org/pushgateway/ ") == "https://gw.example.org/pushgateway"


# What Pushgateway 1.5 answers on GET /api/v1/metrics (trimmed): each group with its grouping key
# and every family, each metric labelled with the group's labels and instance="".
API_ANSWER = {"status": "success", "data": [
    {"labels": {"job": "cloudops_leveller", "playbook": "balance", "cloud": "prod"},
     "last_push_successful": True,
     "cloudops_leveller_runs_total": {"type": "COUNTER", "help": "...", "metrics": [
         {"labels": {"instance": "", "job": "cloudops_leveller", "playbook": "balance", "cloud": "prod",
                     "result": "success"}, "value": "7"},
         {"labels": {"instance": "", "job": "cloudops_leveller", "playbook": "balance", "cloud": "prod",
                     "result": "failed"}, "value": "2"}]},
     "cloudops_leveller_move_duration_seconds": {"type": "HISTOGRAM", "metrics": [
         {"labels": {"instance": "", "job": "cloudops_leveller", "playbook": "balance", "cloud": "prod"},
          "buckets": {"1": "0", "+Inf": "2"}, "count": "2", "sum": "5"}]},
     "push_time_seconds": {"type": "GAUGE", "metrics": [{"labels": {}, "value": "1.7966231389516027e+09"}]}},
    {"labels": {"job": "cloudops_leveller", "playbook": "balance"},
     "cloudops_leveller_runs_total": {"type": "COUNTER", "metrics": [
         {"labels": {"instance": "", "job": "cloudops_leveller", "playbook": "balance", "result": "success"},
          "value": "100"}]}},
]}


def test_only_the_group_with_the_same_grouping_key_is_read():
    samples, found = rm.group_samples(API_ANSWER, {"job": "cloudops_leveller", "playbook": "balance", "cloud": "prod"})
    assert found
    assert rm.previous_state(samples)["runs"] == {"success": 7.0, "failed": 2.0}
    samples, found = rm.group_samples(API_ANSWER, {"job": "cloudops_leveller", "playbook": "balance"})
    assert found and rm.previous_state(samples)["runs"] == {"success": 100.0, "failed": 0.0}
    assert rm.group_samples(API_ANSWER, {"job": "other", "playbook": "balance"}) == ([], False)
    assert rm.group_samples({"status": "success", "data": None}, {"job": "x"}) == ([], False)


class Answer(object):
    def __init__(self, status_code=200, text=""):
        self.status_code, self.text = status_code, text


class Session(object):
    """requests.Session standing in for a Pushgateway: records the calls, answers from a list."""

    def __init__(self, *answers):
        self.answers, self.calls = list(answers), []

    def request(self, method, url, **kw):
        self.calls.append((method, url, kw))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def gateway(session, url="http://u:pw-SECRET@pg.test:9091", **kw):
    return rm.Pushgateway(url, "cloudops_leveller", [("playbook", "balance"), ("cloud", "prod")], session=session, **kw)


def test_read_then_push_replaces_the_group_with_basic_auth_from_the_url():
    session = Session(Answer(200, json.dumps(API_ANSWER)), Answer(200, ""))
    gw = gateway(session, timeout=4)
    samples, found = gw.read()
    gw.push("x 1\n")
    (m1, url1, kw1), (m2, url2, kw2) = session.calls
    assert (m1, url1) == ("GET", "http://pg.test:9091/api/v1/metrics")
    assert (m2, url2) == ("PUT", "http://pg.test:9091/metrics/job/cloudops_leveller/playbook/balance/cloud/prod")
    assert kw1["auth"] == kw2["auth"] == ("u", "pw-SECRET") and kw2["timeout"] == 4 and kw2["verify"] is True
    assert kw2["data"] == b"x 1\n" and kw2["headers"]["Content-Type"].startswith("text/plain; version=0.0.4")
    assert found and gw.grouping == {"job": "cloudops_leveller", "playbook": "balance", "cloud": "prod"}


def test_a_token_is_sent_as_bearer_and_a_ca_bundle_verifies():
    session = Session(Answer(202))
    gateway(session, url="https://pg.test", token="tok-SECRET", ca_cert="/etc/ca.pem").push("x 1\n")
    kw = session.calls[0][2]
    assert kw["headers"]["Authorization"] == "Bearer tok-SECRET" and kw["auth"] is None and kw["verify"] == "/etc/ca.pem"


@pytest.mark.parametrize("answer, words, failure", [
    (requests.exceptions.ConnectionError("cannot reach http://u:pw-SECRET@pg.test:9091/api/v1/metrics"),
     "Pushgateway at http://pg.test:9091 is unreachable while reading the previous values", "unreachable"),
    (requests.exceptions.SSLError("certificate verify failed"), "TLS verification failed", "configuration"),
    (Answer(401, "no"), "refused reading the previous values (HTTP 401): check username/password or token",
     "permission"),
    (Answer(404, "404 page not found"), "HTTP 404", "configuration"),
    (Answer(503, "overloaded"), "HTTP 503 while reading the previous values: overloaded", "unreachable"),
    (Answer(200, "<html>"), "without JSON: is pushgateway_url a Pushgateway?", "configuration"),
    (Answer(200, '{"status": "error"}'), "could not list its metrics", "unreachable"),
])
def test_read_errors_name_the_pushgateway_without_credentials(answer, words, failure):
    with pytest.raises(rm.MetricsError) as exc:
        gateway(Session(answer)).read()
    assert words in str(exc.value) and "pw-SECRET" not in str(exc.value)
    assert exc.value.failure == failure


def test_a_refused_push_says_what_the_pushgateway_said():
    with pytest.raises(rm.MetricsError) as exc:
        gateway(Session(Answer(400, "pushed metrics are invalid or inconsistent with existing metrics"))).push("x 1\n")
    assert "HTTP 400 while pushing the metrics: pushed metrics are invalid or inconsistent" in str(exc.value)


# ---------------------------------------------------------------- the textfile

def test_textfile_names():
    assert rm.textfile_path("/d", "balance", []) == "/d/cloudops_leveller_balance.prom"
    one = rm.textfile_path("/d", "balance", [("cloud", "a")])
    assert one.startswith("/d/cloudops_leveller_balance.") and one.endswith(".prom") and len(one) == len(
        "/d/cloudops_leveller_balance.12345678.prom")
    assert one != rm.textfile_path("/d", "balance", [("cloud", "b")])


def test_the_textfile_is_written_at_once_readable_by_all_whatever_the_umask(tmp_path):
    path = str(tmp_path / "cloudops_leveller_balance.prom")
    old = os.umask(0o077)
    try:
        rm.write_textfile(path, "x 1\n")
        rm.write_textfile(path, "x 2\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert rm.read_textfile(path) == "x 2\n"
    assert os.listdir(str(tmp_path)) == ["cloudops_leveller_balance.prom"]  # no temporary file left


def test_no_previous_file_reads_as_empty(tmp_path):
    assert rm.read_textfile(str(tmp_path / "cloudops_leveller_balance.prom")) == ""


def test_a_symlink_is_neither_read_nor_replaced(tmp_path):
    target = tmp_path / "elsewhere.prom"
    target.write_text("cloudops_leveller_runs_total{result=\"success\"} 99\n")
    link = tmp_path / "cloudops_leveller_balance.prom"
    link.symlink_to(target)
    for call in (lambda: rm.read_textfile(str(link)), lambda: rm.write_textfile(str(link), "x 1\n")):
        with pytest.raises(rm.MetricsError) as exc:
            call()
        assert "is a symlink (to %s)" % target in str(exc.value)
    assert os.path.islink(str(link)) and target.read_text().endswith("99\n")


def test_a_missing_folder_or_a_folder_in_place_of_the_file_is_named(tmp_path):
    with pytest.raises(rm.MetricsError) as exc:
        rm.write_textfile(str(tmp_path / "nope" / "f.prom"), "x 1\n")
    assert "textfile_dir %s is not a folder" % (tmp_path / "nope") in str(exc.value)
    (tmp_path / "f.prom").mkdir()
    with pytest.raises(rm.MetricsError) as exc:
        rm.read_textfile(str(tmp_path / "f.prom"))
    assert "is not a regular file" in str(exc.value)
    with pytest.raises(rm.MetricsError) as exc:
        rm.write_textfile(str(tmp_path / "f.prom"), "x 1\n")
    assert "cannot be written" in str(exc.value)
    assert sorted(os.listdir(str(tmp_path))) == ["f.prom"]
