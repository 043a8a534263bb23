#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: run_metrics
short_description: Send the metrics of a levelling run to a Prometheus Pushgateway or a node-exporter textfile
version_added: 0.1.0
description:
  - Turns the plan of a run (from M(cloudops.leveller.level_plan)) and what the executor did (the
    registered result of M(cloudops.leveller.live_migrate) or M(cloudops.leveller.evacuate_host))
    into Prometheus metrics named C(cloudops_leveller_*), each labelled C(playbook=<playbook>) and
    with the O(labels) given.
  - "Counters: C(runs_total{result=success|failed}) and C(run_moves_total{state}). Of the last run:
    C(last_run_timestamp_seconds), C(last_run_success) (1 or 0), C(run_duration_seconds) (from the
    plan's snapshot to the end of the run), C(moves{state=planned|done|failed|aborted|skipped|unresolved}),
    C(moved_memory_bytes{state=planned|done}), C(spread_ratio), C(spread_stddev) and C(spread_max)
    C({when=before|planned|measured}), C(plan_bound_gap{goal}) and the histogram
    C(move_duration_seconds). Then C(last_success_timestamp_seconds), the end of the last run that
    succeeded. The monitoring guide lists them all, with the shipped alerts."
  - A counter cannot be kept in a playbook, so each run reads the previous values back and adds
    to them. With O(pushgateway_url), from the Pushgateway's API (C(GET /api/v1/metrics)) for the
    same group; with O(textfile_dir), from the previous file. When that is lost (a Pushgateway
    restarted without persistence, a deleted file) the counters start again from 0, which
    Prometheus's C(increase) and C(rate) functions read as a counter reset.
    C(last_success_timestamp_seconds) is carried over the same way when the run failed.
  - The Pushgateway group (job O(job), then C(playbook) and the O(labels)) is replaced as a whole
    (C(PUT)), so a figure the last run did not have does not stay from an older run. A C(POST)
    would keep every metric name not pushed again, including the stale ones.
  - The textfile C(<textfile_dir>/cloudops_leveller_<playbook>.prom) is written at once (a
    temporary file in the same folder, then a rename), mode C(0644) so node-exporter, which runs as
    another user, can read it. It holds counts, times and figures under the labels above, nothing
    secret and no instance name. A symlink in its place is refused.
  - A target that cannot be read or written does not fail the task unless O(fail_on_error=true).
    The module warns, names the target and why, and returns C(changed=false) if nothing was sent.
    Metrics must not turn a run's own result into a failure. Bad input (a plan or a measurement
    that breaks the contract, a bad label, a URL that is not http(s)) always fails, naming the
    option.
extends_documentation_fragment:
  - cloudops.leveller.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the previous values and renders the metrics (returned as C(text)), but pushes and
        writes nothing. C(changed) is what a real run would report.
  diff_mode:
    support: none
options:
  playbook:
    description:
      - Value of the C(playbook) label, for example V(balance) or V(evacuate-compute1). Also names
        the textfile.
      - 1 to 128 letters, digits, C(_), C(.) or C(-), starting with a letter or digit.
    type: str
    required: true
  plan:
    description:
      - The plan of the run (the C(plan) returned by M(cloudops.leveller.level_plan)). Checked
        against the plan contract (C(docs/schema/plan-v1.schema.json)); a bad field fails naming it.
      - Empty when the run had no plan (a recovery); the planned moves are then the executor's.
    type: dict
    default: {}
  result:
    description:
      - The registered result of M(cloudops.leveller.live_migrate) or
        M(cloudops.leveller.evacuate_host). Its C(failed) flag and its C(moves) (C(result) and
        C(seconds) of each) are read; its other keys are ignored.
      - Empty when nothing ran (no move to make, or the run failed before executing).
    type: dict
    default: {}
  measured:
    description:
      - Figures measured by a fresh snapshot after the run, of the form of a plan's C(before)
        (C(hosts) and C(spread)). Gives the C(when=measured) spread metrics.
    type: dict
    default: {}
  failed:
    description:
      - Whether the run failed. By default it failed when O(result) says C(failed), or when any
        of its moves failed, was aborted or is unresolved.
    type: bool
  pushgateway_url:
    description:
      - Base URL of the Prometheus Pushgateway, with its route prefix if it has one, for example
        V(http://pushgateway:9091).
      - Credentials in the URL (V(https://user:password@pushgateway:9091)) are sent as HTTP basic
        authentication unless O(username) or O(token) is set. They are never echoed; messages
        and results show the URL without them.
      - Falls back to the environment variable E(LEVELLER_PUSHGATEWAY_URL). An empty string
        means no Pushgateway.
      - At least one of O(pushgateway_url) and O(textfile_dir) is required.
    type: str
  textfile_dir:
    description:
      - Folder of node-exporter's textfile collector (its C(--collector.textfile.directory), on
        Debian C(/var/lib/prometheus/node-exporter)) on the host the task runs on. It must exist.
      - The file is C(cloudops_leveller_<playbook>.prom); with O(labels), a digest of the labels is
        added to the name (C(cloudops_leveller_<playbook>.<8 hex digits>.prom)) so runs with other
        labels keep their own file. A file holds no C(job) label (node-exporter's scrape job applies).
    type: path
  job:
    description:
      - The C(job) label of the Pushgateway group.
    type: str
    default: cloudops_leveller
  labels:
    description:
      - More labels of every metric, and of the Pushgateway group, for example C(cloud=prod) when
        several clouds push to one Pushgateway.
      - Names are Prometheus label names; C(job), C(playbook), C(result), C(state), C(when),
        C(goal) and C(le) are taken by the metrics themselves.
    type: dict
    default: {}
  timeout:
    description:
      - Seconds each request to the Pushgateway may take.
    type: int
    default: 10
  validate_certs:
    description:
      - Whether to verify the Pushgateway's TLS certificate.
    type: bool
    default: true
  ca_cert:
    description:
      - CA bundle to verify the Pushgateway's TLS certificate.
    type: path
  username:
    description:
      - User name for HTTP basic authentication to the Pushgateway.
    type: str
  password:
    description:
      - Password for HTTP basic authentication to the Pushgateway.
    type: str
  token:
    description:
      - Bearer token sent to the Pushgateway (for example through an authenticating proxy).
      - Mutually exclusive with O(username).
    type: str
  fail_on_error:
    description:
      - Fail the task when a target cannot be read or written. By default the module warns and
        goes on, so the run's own result stays what decides the play.
    type: bool
    default: false
notes:
  - Runs where the task runs, which is the controller in the collection's playbooks. For a
    textfile on another host, delegate the task to it.
  - A run that stops before its report (gathering or planning failed) sends nothing; the
    C(LevellerNoSuccessfulRun) alert of the monitoring guide catches that.
  - Two runs of one playbook that finish at the same moment can both read the same count and
    one increment is lost; the counters are for trends, the reports are the record.
seealso:
  - module: cloudops.leveller.level_plan
  - module: cloudops.leveller.live_migrate
  - module: cloudops.leveller.evacuate_host
author:
  - cloudops.leveller contributors (@cloudops-leveller)
'''

EXAMPLES = r'''
- name: Push the metrics of a balance run to the Pushgateway
  cloudops.leveller.run_metrics:
    playbook: balance
    plan: "{{ planned.plan }}"
    result: "{{ executed if executed is not skipped else {} }}"
    pushgateway_url: http://pushgateway.example.org:9091
    labels:
      cloud: prod

- name: Write them for node-exporter's textfile collector instead, on the monitoring host
  cloudops.leveller.run_metrics:
    playbook: balance
    plan: "{{ planned.plan }}"
    result: "{{ executed }}"
    textfile_dir: /var/lib/prometheus/node-exporter
  delegate_to: monitor1

- name: A run that failed before it could execute anything
  cloudops.leveller.run_metrics:
    playbook: consolidate
    plan: "{{ planned.plan }}"
    failed: true
    pushgateway_url: "{{ lookup('ansible.builtin.env', 'LEVELLER_PUSHGATEWAY_URL') }}"
'''

RETURN = r'''
figures:
  description: What the metrics say about the run, before the counters are carried over.
  returned: always
  type: dict
  contains:
    success:
      description: Whether the run succeeded.
      type: bool
    finished_at:
      description: Unix time of the end of the run (when the metrics were made).
      type: float
    duration_seconds:
      description: Seconds from the plan's C(snapshot_taken_at) to the end of the run, or null.
      type: float
    moves:
      description: Moves by state (C(planned), C(done), C(failed), C(aborted), C(skipped), C(unresolved)).
      type: dict
    moved_memory_bytes:
      description: RAM of the moves C(planned) and C(done).
      type: dict
    spread:
      description: C(ratio), C(stddev) and C(max) of the host scores, each by C(before), C(planned) and C(measured) (those known).
      type: dict
    bound_gaps:
      description: Gaps of the plan to its lower bounds, by goal (C(hosts_used), C(cpu_max), C(memory_max), C(makespan_seconds)).
      type: dict
    move_seconds:
      description: Duration of each move that started.
      type: list
      elements: float
  sample:
    success: true
    finished_at: 1796623138.95
    duration_seconds: 41.2
    moves: {planned: 2, done: 2, failed: 0, aborted: 0, skipped: 0, unresolved: 0}
    moved_memory_bytes: {planned: 1073741824, done: 1073741824}
    spread: {ratio: {before: 3.1, planned: 0.4}, stddev: {before: 0.31, planned: 0.05}, max: {before: 1.2, planned: 0.7}}
    bound_gaps: {cpu_max: 0.0, memory_max: 0.02}
    move_seconds: [1.6, 2.1]
pushgateway:
  description: With a Pushgateway, what happened there; null without.
  returned: always
  type: dict
  contains:
    url:
      description: URL of the group (without credentials).
      type: str
    group:
      description: The grouping key (C(job), C(playbook) and the O(labels)).
      type: dict
    found:
      description: Whether the group was there before (counters carried over), or null if it could not be read.
      type: bool
    pushed:
      description: Whether the metrics were pushed (false in check mode and on an error).
      type: bool
    text:
      description: The metrics, in the Prometheus text format (null when the previous values could not be read).
      type: str
    error:
      description: Why the Pushgateway could not be read or written, else null.
      type: str
  sample:
    url: http://pushgateway:9091/metrics/job/cloudops_leveller/playbook/balance
    group: {job: cloudops_leveller, playbook: balance}
    found: true
    pushed: true
    text: "# HELP cloudops_leveller_runs_total ...\n"
    error: null
textfile:
  description: With O(textfile_dir), what happened to the file; null without.
  returned: always
  type: dict
  contains:
    path:
      description: The file.
      type: str
    found:
      description: Whether a previous file was there (counters carried over), or null if it could not be read.
      type: bool
    written:
      description: Whether it was written (false in check mode and on an error).
      type: bool
    text:
      description: The metrics, in the Prometheus text format (null when the previous file could not be read).
      type: str
    error:
      description: Why the file could not be read or written, else null.
      type: str
  sample:
    path: /var/lib/prometheus/node-exporter/cloudops_leveller_balance.prom
    found: true
    written: true
    text: "# HELP cloudops_leveller_runs_total ...\n"
    error: null
msg:
  description: One-line summary.
  returned: always
  type: str
'''

import time
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.cloudops.leveller.plugins.module_utils._openstack import FailureClass, LevellerModule
from ansible_collections.cloudops.leveller.plugins.module_utils import _run_metrics as rm


def _send(module, target, figures, inline):
    """Render on what ``target`` holds and send it (not in check mode): (text, found, sent, error)."""
    try:
        samples, found = target.read()
        text = rm.render(figures, rm.previous_state(samples), inline)
        if not module.check_mode:
            target.push(text)
        return text, found, not module.check_mode, None
    except rm.MetricsError as exc:
        return None, None, False, str(exc)


def run(module):
    p = module.params
    extra = sorted((str(k), str(v)) for k, v in p['labels'].items())
    targets = []
    try:
        rm.check_inputs(p['playbook'], p['plan'], p['result'], p['measured'], p['labels'])
        if not p['pushgateway_url'] and not p['textfile_dir']:
            raise ValueError('pushgateway_url or textfile_dir: give at least one (or set LEVELLER_PUSHGATEWAY_URL)')
        if p['pushgateway_url']:
            if not rm.HAS_REQUESTS:
                module.fail_json(msg=missing_required_lib('requests'), exception=rm.REQUESTS_IMPORT_ERROR,
                                 failure=FailureClass.CONFIGURATION)
            gateway = rm.Pushgateway(p['pushgateway_url'], p['job'], [('playbook', p['playbook'])] + extra,
                                     timeout=p['timeout'], validate_certs=p['validate_certs'], ca_cert=p['ca_cert'],
                                     username=p['username'], password=p['password'], token=p['token'])
            targets.append(('pushgateway', gateway, 'push to ' + gateway.url, 'pushed',
                            dict(url=gateway.url, group=gateway.grouping)))
        if p['textfile_dir']:
            textfile = rm.Textfile(p['textfile_dir'], p['playbook'], extra)
            targets.append(('textfile', textfile, 'write ' + textfile.path, 'written', dict(path=textfile.path)))
    except ValueError as exc:
        module.fail_json(msg=str(exc), failure=FailureClass.CONFIGURATION)

    figures = rm.run_figures(p['plan'], p['result'], p['measured'], p['failed'], time.time())
    inline = [('playbook', p['playbook'])] + extra
    result = dict(changed=False, figures=figures, pushgateway=None, textfile=None)
    done, errors = [], []
    for key, target, action, sent_key, view in targets:
        view['text'], view['found'], view[sent_key], view['error'] = _send(module, target, figures, inline)
        result[key] = view
        if view['error']:
            errors.append(view['error'])
        else:
            done.append(('would ' if module.check_mode else '') + action)
    result['changed'] = bool(done)
    outcome = 'success' if figures['success'] else 'failed'
    result['msg'] = 'run %s (%s): %s' % (p['playbook'], outcome, '; '.join(done) or 'nothing sent')
    if errors:
        result['msg'] += '; ' + '; '.join(errors)
        if p['fail_on_error']:
            module.fail_json(failure=FailureClass.UNREACHABLE, **result)
        for error in errors:
            module.warn('run_metrics: %s' % error)
    module.exit_json(**result)


def main():
    module = LevellerModule(
        argument_spec=dict(
            playbook=dict(type='str', required=True),
            plan=dict(type='dict', default={}),
            result=dict(type='dict', default={}),
            measured=dict(type='dict', default={}),
            failed=dict(type='bool'),
            pushgateway_url=dict(type='str', fallback=(env_fallback, ['LEVELLER_PUSHGATEWAY_URL'])),
            textfile_dir=dict(type='path'),
            job=dict(type='str', default='cloudops_leveller'),
            labels=dict(type='dict', default={}),
            timeout=dict(type='int', default=10),
            validate_certs=dict(type='bool', default=True),
            ca_cert=dict(type='path'),
            username=dict(type='str'),
            password=dict(type='str', no_log=True),
            token=dict(type='str', no_log=True),
            fail_on_error=dict(type='bool', default=False),
        ),
        mutually_exclusive=[('username', 'token')],
        supports_check_mode=True,
    )
    if module.params['timeout'] <= 0:
        module.fail_json(msg='timeout: expected a positive number of seconds, got %s' % module.params['timeout'],
                         failure=FailureClass.CONFIGURATION)
    if not module.params['job']:
        module.fail_json(msg='job: expected a non-empty job name', failure=FailureClass.CONFIGURATION)
    try:
        run(module)
    except Exception as exc:  # report, never leave a traceback without context
        module.fail_json(msg='run_metrics stopped unexpectedly: %s' % exc, exception=traceback.format_exc(),
                         failure=FailureClass.INCONSISTENT)


if __name__ == '__main__':
    main()
