# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudops.leveller contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options shared by the modules that carry out moves (live_migrate, evacuate_host).
    # Their argument spec is execution_argument_spec() in module_utils/_execute.py.
    DOCUMENTATION = r'''
options:
  on_drift:
    description:
      - What to do with a move whose live state differs from what it expects.
      - Drift is any of these, found by the pre-check just before the move starts. The instance
        is gone, is not on the move's source host, is not ACTIVE, or is busy (task_state). The
        source's compute service is down. The destination is not enabled, not up, or no longer
        has room for the instance.
      - C(skip) reports the move as C(skipped) with the reason and goes on. C(fail) reports it
        as C(failed), which then counts for O(on_failure).
      - An instance already on its destination is always C(skipped), never drift.
    type: str
    choices: [skip, fail]
    default: skip
  abort_timeout:
    description:
      - Seconds to wait, after an abort request, for Nova to roll the migration back.
    type: int
    default: 120
  poll_interval:
    description:
      - Seconds between two reads of the state of the moves in flight.
    type: float
    default: 2.0
  max_parallel:
    description:
      - Moves in flight at the same time within a wave.
    type: int
    default: 1
  progress_log:
    description:
      - File to which one line per finished move (and one per wave as it starts) is appended as
        it happens, so that C(tail -f) shows a long run live. The lines of finished moves are
        returned in RV(progress). On the controller the job output shows them live too.
      - The file is created (or narrowed to) mode C(0600), as it names the cloud's instances; a
        missing folder is created C(0700). A file or folder that is a symlink is refused.
    type: path
  lock:
    description:
      - Take the per-cloud lock before moving, so two runs never migrate on the same cloud at
        the same time. The lock is a C(flock) on a file on the machine running the module,
        named after the cloud's auth URL, region and project, and released when the module
        ends, however it ends.
      - Check mode and runs with nothing to move take no lock.
    type: bool
    default: true
  lock_timeout:
    description:
      - Seconds to wait for the lock held by another run. C(0) fails at once, naming the holder.
    type: int
    default: 0
  lock_dir:
    description:
      - Directory of the lock files. Defaults to C($XDG_RUNTIME_DIR/cloudops-leveller/locks), or
        C(~/.cache/cloudops-leveller/locks).
      - Lock files are mode C(0600); a missing directory is created C(0700). A directory or lock
        file that is a symlink is refused.
    type: path
  journal_dir:
    description:
      - Directory of the run journals. Every run that moves instances writes one journal file
        there (JSON lines, mode C(0600), each line written to disk before the run goes on). It
        holds the moves the run means to make, each start call before it is sent and its answer
        after, and each move's end after its post-check. Its path is returned in RV(journal) and
        written to the progress log.
      - Defaults to C($XDG_STATE_HOME/cloudops-leveller/journal), or
        C(~/.local/state/cloudops-leveller/journal). Check mode and runs with nothing to move
        write no journal.
    type: path
  resume:
    description:
      - The journal of a run that was interrupted (killed, cancelled, a controller that went
        down), as returned in RV(journal) or printed in its progress log. The run then carries
        out only what that run left unfinished and appends to the same journal.
      - A move whose start call was sent (an C(intent) record without an C(end)) is read back
        and, when Nova began it, tracked to its end and post-checked, never started twice. An
        evacuated instance that was running before and is C(SHUTOFF) on its new host is started.
        A move that had not begun is checked again against the live cloud like any other move,
        and carried out or skipped as drift. Moves that ended are not touched again.
      - Instead of a new plan, instance or host list.
    type: path
notes:
  - Run it on the controller (C(delegate_to=localhost) or a play on C(localhost)), so the lock
    is shared by every run from that controller.
'''
