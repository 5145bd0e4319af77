"""The judge's scheduler: jobs (one program, many tests) over one sandbox per core.

One dispatcher thread owns every worker socket. Callers hand over whole jobs and wait; the
dispatcher keeps each core's supervisor a few milliseconds of tests ahead (the queue depth adapts
to how long tests take), loads programs into supervisor slots, collects the streamed output and
reports, and turns them into results through the job's own callback (in report order, which is
test order per worker). No thread, future or pipe per test: the host's share of a tiny test is a
few struct packs and a report parse.

Per core there is a "lean" sandbox (stdio Python, C++) and, started on first use, a "full" one
(call/assert, LiveCodeBench's prelude pre-imported); a core runs tests in one of them at a time,
so one program per core runs at a time and wall-time limits keep their meaning. Tests with
different cgroup limits never share a worker's queue (the worker drains first).

A `stop_on_first_failure` job has one test in flight at a time (LiveCodeBench: the tests after
the first failure are not run); many such jobs fill the cores together.

A test that runs far longer than that worker's recent ones (a time-limit run, say) would hold up
the tests queued behind it: after max(50 ms, 20 x the recent average) the worker takes no more
and hands its unstarted tests back (RETRACT), to run on the other cores.

Failures: a worker that dies fails its running test as SE and hands its queued (never started)
tests back to be run elsewhere; one that gives no report within the wall limit + HOST_GRACE_S is
killed the same way. Sandboxes start (and restart) on background threads, so one slow or failing
start never stalls the other cores' hand-overs; one that cannot start is retried every second,
and when a profile has had no live sandbox for NO_WORKER_TIMEOUT_S its waiting tests fail as SE.
"""

from __future__ import annotations

import collections
import logging
import marshal
import math
import os
import queue
import select
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from xcoder.judge.limits import cgroup_limits
from xcoder.judge.types import Limits
from xcoder.judge.verdicts import RawRun
from xcoder.judge.warm import START_TIMEOUT_S, ProtocolError, Sent, WarmWorker

log = logging.getLogger(__name__)

HOST_GRACE_S = 10.0  # beyond a test's wall limit before we declare its supervisor stuck (SE)
LOW_WATER = 3  # queued tests below which a worker's reports are read as they arrive
MAX_DEFER_S = 0.005  # longest a worker's reports wait unread
# A supervisor's heap creeps up with every program it loads (fragmentation, ~0.1 MB per 1,000
# measured) and every fork copies its page tables: an idle one that has loaded this many is
# replaced by a fresh one (~0.15 s, every ~200,000 tests of distinct RL programs).
RECYCLE_AFTER_PROGRAMS = 20_000
RESTART_RETRY_S = 1.0
NO_WORKER_TIMEOUT_S = 30.0

Deliver = Callable[[int, RawRun], bool]  # (test index, raw run) -> keep going (False: stop the job)


class PoolJob:
    """A program and its tests as the pool runs them. `deliver` is called on the dispatcher thread
    once per test that ran (or failed as SE), in completion order; returning False ends a
    `stop_on_first_failure` job (its remaining tests are not run)."""

    def __init__(self, *, programs: Sequence[tuple[object, bytes]], tests: Sequence[tuple[bytes, bytes]],
                 limits: Limits, profile: str, stop_on_first_failure: bool, deliver: Deliver) -> None:
        if len(programs) not in (1, len(tests)):
            raise ValueError("a job has one program, or one per test")
        self.programs = programs  # (slot key, marshalled description): one for all tests, or one per test
        self.tests = tests  # (call payload, stdin) per test
        self.limits = limits
        self.limits_key = cgroup_limits(limits)
        self.profile = profile
        self.stop = stop_on_first_failure
        self.deliver = deliver
        self.pending: collections.deque[int] = collections.deque(range(len(tests)))
        self.inflight = 0
        self.stopped = False
        self.in_ready = False
        self.error: BaseException | None = None
        self.done = threading.Event()

    def program(self, index: int) -> tuple[object, bytes]:
        return self.programs[0] if len(self.programs) == 1 else self.programs[index]

    @property
    def finished(self) -> bool:
        return self.done.is_set()


def python_program(*, kind: str, code: str, code_obj, fn_name: str | None, prelude: bool,
                   test_code: str | None = None) -> tuple[object, bytes]:
    """A Python program's slot key and the description the supervisor loads (`zygote.prepare`).
    `code_obj`: the host's compile of `code` (sent marshalled: the supervisor need not compile)."""
    description = {"language": "python", "kind": kind, "prelude": prelude, "code": code, "fn_name": fn_name,
                   "code_marshal": marshal.dumps(code_obj) if code_obj is not None else None}
    if kind == "assert":
        description["test_code"] = test_code
        try:
            description["test_marshal"] = marshal.dumps(compile(test_code or "", "test.py", "exec"))
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            description["test_marshal"] = None  # the child compiles it and raises like python3
    key = ("python", kind, prelude, fn_name, code, test_code)
    return key, marshal.dumps(description)


def cpp_program(binary_path: str) -> tuple[object, bytes]:
    return ("cpp", binary_path), marshal.dumps({"language": "cpp", "binary": binary_path, "kind": "stdio"})


class WarmPool:
    """`workers` cores, each with its sandboxes; `run(jobs)` blocks until every job is done.
    Thread-safe: concurrent callers' jobs are interleaved in submission order."""

    def __init__(self, workers: int, isolation_mode: str, cpp_dir: Path) -> None:
        from xcoder.judge import native

        self.isolation_mode = isolation_mode
        self.cpp_dir = cpp_dir
        self.native_so = native.shared_object(cpp_dir)
        self.cores: list[dict[str, WarmWorker]] = []
        self._broken: dict[tuple[int, str], tuple[float, str]] = {}  # (core, profile) -> (retry at, why)
        self._starting: dict[tuple[int, str], bool] = {}  # sandboxes the starter thread is (re)starting
        self._started: list[tuple[tuple[int, str], WarmWorker | None, BaseException | None]] = []
        self._down_since: dict[str, float] = {}  # profile -> since when no sandbox of it is live
        self._inbox: list[PoolJob] = []
        self._lock = threading.Lock()
        self._closing = False
        self._ready: collections.deque[PoolJob] = collections.deque()
        self._live: set[PoolJob] = set()
        self._by_fd: dict[int, WarmWorker] = {}
        self._poller = select.poll()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poller.register(self._wake_r, select.POLLIN)
        # Every sandbox is started by this one thread, alive as long as the pool: bubblewrap's
        # --die-with-parent (PR_SET_PDEATHSIG) fires when the *thread* that forked it ends.
        self._start_requests: queue.SimpleQueue = queue.SimpleQueue()
        self._starter = threading.Thread(target=self._starter_loop, name="judge-start", daemon=True)
        self._starter.start()
        try:
            for index in range(workers):
                worker = self._start_and_wait(index, "lean")
                self.cores.append({"lean": worker})
                self._watch(worker)
        except Exception:
            self._stop_workers()
            self._start_requests.put(None)
            raise
        self._thread = threading.Thread(target=self._run, name="judge-dispatch", daemon=True)
        self._thread.start()

    # -- starting sandboxes (the starter thread) -------------------------------------------------
    def _starter_loop(self) -> None:
        while True:
            request = self._start_requests.get()
            if request is None:
                return
            key, worker, reply = request
            result: WarmWorker | None = worker
            error: BaseException | None = None
            try:
                if worker is None:
                    result = WarmWorker(key[0], self.isolation_mode, self.cpp_dir, key[1], self.native_so)
                else:
                    worker.start()
            except Exception as exc:  # noqa: BLE001 - any start failure: retried, reported, never fatal
                error = exc
            reply(result, error)

    def _start_and_wait(self, index: int, profile: str) -> WarmWorker:
        done = threading.Event()
        outcome: list = []

        def reply(worker: WarmWorker | None, error: BaseException | None) -> None:
            outcome.extend((worker, error))
            done.set()

        self._start_requests.put(((index, profile), None, reply))
        done.wait()
        worker, error = outcome
        if error is not None:
            raise error
        assert worker is not None
        return worker

    @property
    def workers(self) -> int:
        return len(self.cores)

    # -- callers ---------------------------------------------------------------------------------
    def run(self, jobs: Sequence[PoolJob]) -> None:
        """Run every job to completion (results go through each job's `deliver`)."""
        self.submit(jobs)
        self.wait(jobs)

    def submit(self, jobs: Sequence[PoolJob]) -> None:
        """Hand jobs over; they start at once (FIFO after those already submitted)."""
        if not jobs:
            return
        with self._lock:
            if self._closing:
                raise RuntimeError("judge pool is closed")
            self._inbox.extend(jobs)
        self._wake()

    @staticmethod
    def wait(jobs: Sequence[PoolJob]) -> None:
        """Until every job is done; a `deliver` callback's exception is raised here."""
        for job in jobs:
            job.done.wait()
        for job in jobs:
            if job.error is not None:
                raise job.error

    def close(self) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # already awake-pending

    def cpu_seconds(self) -> float:
        """CPU used so far by the sandboxes (supervisors + every test process they reaped):
        lets benchmarks report CPU per test, which machine load distorts less than wall time."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for worker in self._workers():
            proc = worker.proc
            if proc is None:
                continue
            stack = [proc.pid]
            while stack:
                pid = stack.pop()
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
                    for task in Path(f"/proc/{pid}/task").iterdir():
                        stack += [int(c) for c in (task / "children").read_text().split()]
                except (OSError, ValueError):
                    continue
        return total / tick

    def program_uids(self) -> set[int]:
        return {w.uid for w in self._workers() if w.uid is not None}

    def _workers(self) -> list[WarmWorker]:
        return [w for core in list(self.cores) for w in list(core.values())]

    # -- the dispatcher thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                due: list[WarmWorker] = []
                for fd, events in self._poller.poll(self._timeout_ms()):
                    if fd == self._wake_r:
                        try:
                            while os.read(self._wake_r, 4096):
                                pass
                        except BlockingIOError:
                            pass
                        continue
                    worker = self._by_fd.get(fd)
                    if worker is None:
                        continue
                    if events & select.POLLOUT:
                        self._flush(worker)
                    if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                        due.append(worker)
                now = time.monotonic()
                due += [w for w in self._by_fd.values() if w.defer_until and w.defer_until <= now and w not in due]
                for worker in due:
                    worker.defer_until = 0.0
                    if worker.sock is not None:
                        self._receive(worker)
                with self._lock:
                    incoming, self._inbox = self._inbox, []
                    started, self._started = self._started, []
                    closing = self._closing
                for key, worker, error in started:
                    self._adopt(key, worker, error)
                for job in incoming:
                    self._live.add(job)
                    self._make_ready(job)
                if closing:
                    break
                self._check_workers()
                self._schedule()
                self._update_watch()
        except BaseException as exc:  # noqa: BLE001 - never leave a caller waiting forever
            log.exception("judge dispatcher failed")
            self._fail_everything(f"judge dispatcher failed: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._closing = True
                leftover, self._inbox = self._inbox, []
            self._live.update(leftover)
            self._fail_everything("the judge was closed")
            self._start_requests.put(None)  # the starter finishes what it holds (those stop themselves), then ends
            self._starter.join(timeout=START_TIMEOUT_S + 5)
            with self._lock:
                started, self._started = self._started, []
            for _key, worker, _error in started:
                if worker is not None:
                    worker.stop()
            self._stop_workers()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _update_watch(self) -> None:
        """Watch each worker's socket, or read it later: while a worker has more than LOW_WATER
        tests queued and none is streaming output, its reports can wait in the socket until the
        queue runs low, and one wake-up then handles a dozen reports instead of one."""
        now = time.monotonic()
        for worker in self._by_fd.values():
            queued = len(worker.outstanding)
            streaming = queued and worker.outstanding[0].chunks is not None
            if queued > LOW_WATER and not streaming:
                if not worker.defer_until:  # a deferral runs out once; it is not pushed back
                    worker.defer_until = now + min(MAX_DEFER_S, (queued - LOW_WATER) * worker.avg_test_s)
                mask = 0
            else:
                worker.defer_until = 0.0
                mask = select.POLLIN
            if worker.outbox:
                mask |= select.POLLOUT
            if mask != worker.watch_mask:
                self._poller.modify(worker.fileno(), mask)
                worker.watch_mask = mask

    def _timeout_ms(self) -> int:
        now = time.monotonic()
        deadlines = [w.head_since + w.outstanding[0].wall_s + HOST_GRACE_S
                     for w in self._by_fd.values() if w.outstanding]
        deadlines += [w.defer_until for w in self._by_fd.values() if w.defer_until]
        if len(self._by_fd) > 1:  # work stealing (`_check_workers`) needs another worker
            deadlines += [w.head_since + w.slow_after_s() for w in self._by_fd.values()
                          if len(w.outstanding) > 1 and not w.retracting]
        deadlines += [at for at, _ in self._broken.values()]
        deadlines += [since + NO_WORKER_TIMEOUT_S for since in self._down_since.values()]
        if not deadlines:
            return -1
        return max(0, int((min(deadlines) - now) * 1000) + 1)

    def _watch(self, worker: WarmWorker) -> None:
        self._by_fd[worker.fileno()] = worker
        self._poller.register(worker.fileno(), select.POLLIN)
        worker.watch_mask = select.POLLIN
        worker.defer_until = 0.0

    def _unwatch(self, worker: WarmWorker) -> None:
        for fd, w in list(self._by_fd.items()):
            if w is worker:
                del self._by_fd[fd]
                try:
                    self._poller.unregister(fd)
                except KeyError:
                    pass

    def _make_ready(self, job: PoolJob, front: bool = False) -> None:
        if job.in_ready or job.finished or not job.pending:
            return
        job.in_ready = True
        if front:
            self._ready.appendleft(job)
        else:
            self._ready.append(job)

    # -- results ---------------------------------------------------------------------------------
    def _receive(self, worker: WarmWorker) -> bool:
        """Read and deliver what a worker sent; False when it failed (and is being replaced)."""
        failure = None
        try:
            done, closed = worker.receive()
        except ProtocolError as exc:
            done, closed, failure = exc.done, False, str(exc)
        except OSError as exc:
            done, closed, failure = [], False, f"control socket error: {exc}"
        for sent, raw, clean in done:
            if raw is None:  # handed back unstarted (a long test held this worker): runs elsewhere
                self._requeue(sent)
                continue
            if not clean:
                log.warning("judge worker %d: processes survived the kill sweep; it is restarted", worker.index)
            self._deliver(sent, raw)
        if failure is not None:
            self._worker_failed(worker, failure)
            return False
        if closed:
            self._worker_failed(worker, "it closed its control socket")
            return False
        return True

    def _deliver(self, sent: Sent, raw: RawRun) -> None:
        job = sent.job
        job.inflight -= 1
        if not job.finished and not job.stopped:
            try:
                keep_going = job.deliver(sent.index, raw)
            except BaseException as exc:  # noqa: BLE001 - surfaced to the caller by `run`
                job.error = exc
                keep_going = False
                job.stopped = True
            if not keep_going and job.stop:
                job.stopped = True
            if job.stopped:
                job.pending.clear()
        self._finish_if_done(job)
        # a chain that goes on keeps its place ahead of jobs not started yet: chains finish early,
        # and a long one does not end up as the batch's tail
        self._make_ready(job, front=job.stop)

    def _finish_if_done(self, job: PoolJob) -> None:
        if not job.finished and job.inflight == 0 and (job.stopped or not job.pending):
            self._live.discard(job)
            job.done.set()

    def _requeue(self, sent: Sent) -> None:
        """A test a dead worker held but never started: it runs elsewhere."""
        job = sent.job
        job.inflight -= 1
        if not job.finished and not job.stopped:
            job.pending.appendleft(sent.index)
            self._make_ready(job, front=True)
        self._finish_if_done(job)

    def _fail_everything(self, why: str) -> None:
        for worker in self._workers():
            while worker.outstanding:
                self._deliver(worker.outstanding.popleft(), RawRun(error=why))
        for job in list(self._live):
            self._fail_pending(job, why)
            job.inflight = 0
            self._live.discard(job)
            job.done.set()
        self._ready.clear()

    # -- worker failures -------------------------------------------------------------------------
    def _worker_failed(self, worker: WarmWorker, reason: str) -> None:
        held = list(worker.outstanding)
        worker.outstanding.clear()
        retiring = worker.retiring
        self._unwatch(worker)
        tail = worker.log_tail() if not retiring else ""
        worker.stop()
        if held and not retiring:  # the running test: the judge failed it, not the program
            message = f"judge worker {worker.index} died: {reason}"
            if tail.strip():
                message += f"; log: {tail}"
            log.error("%s", message)
            self._deliver(held.pop(0), RawRun(error=message))
        for sent in reversed(held):
            self._requeue(sent)
        self._launch(worker.index, worker.profile, worker)

    def _launch(self, index: int, profile: str, worker: WarmWorker | None = None) -> None:
        """(Re)start a sandbox on the starter thread: the dispatcher keeps serving the other cores
        (a start takes ~0.1–0.3 s, up to START_TIMEOUT_S when something is wrong) and adopts the
        worker when it is up (`_adopt`)."""
        key = (index, profile)
        if key in self._starting:
            return
        self._broken.pop(key, None)

        def reply(result: WarmWorker | None, error: BaseException | None) -> None:
            with self._lock:
                closing = self._closing
                if not closing:
                    self._started.append((key, result, error))
            if closing and error is None and result is not None:
                result.stop()  # the pool closed meanwhile: nobody will adopt it
            self._wake()

        self._starting[key] = True
        self._start_requests.put((key, worker, reply))

    def _adopt(self, key: tuple[int, str], worker: WarmWorker | None, error: BaseException | None) -> None:
        self._starting.pop(key, None)
        index, profile = key
        if error is not None or worker is None:
            log.error("judge worker %d (%s) cannot start: %s", index, profile, error)
            self._broken[key] = (time.monotonic() + RESTART_RETRY_S, f"{type(error).__name__}: {error}")
            return
        self.cores[index][profile] = worker
        self._watch(worker)

    def _is_live(self, worker: WarmWorker | None) -> bool:
        return worker is not None and worker.sock is not None and self._by_fd.get(worker.fileno()) is worker

    def _check_workers(self) -> None:
        now = time.monotonic()
        live_cores = sum(1 for core in self.cores if any(self._is_live(w) for w in core.values()))
        for worker in list(self._by_fd.values()):
            if worker.outstanding and now > worker.head_since + worker.outstanding[0].wall_s + HOST_GRACE_S:
                self._worker_failed(worker, f"no result within the wall limit + {HOST_GRACE_S:g} s")
            elif (len(worker.outstanding) > 1 and not worker.retracting and live_cores > 1
                  and worker.head_is_slow(now)):
                # work stealing: a long test (a time-limit run, say) holds this core; what waits
                # behind it comes back and goes to the cores that are free
                worker.retract()
                self._flush(worker)
        for worker in list(self._by_fd.values()):
            if worker.programs_loaded >= RECYCLE_AFTER_PROGRAMS and not worker.outstanding and not worker.outbox:
                log.info("judge worker %d (%s): fresh supervisor after %d programs", worker.index, worker.profile,
                         worker.programs_loaded)
                self._unwatch(worker)
                worker.stop()
                self._launch(worker.index, worker.profile, worker)
        for (index, profile), (retry_at, _) in list(self._broken.items()):
            if now >= retry_at:
                self._launch(index, profile, self.cores[index].get(profile))
        # a profile with no live sandbox anywhere: its waiting tests fail as SE after a while
        waiting = {job.profile for job in self._ready}
        for profile in set(self._down_since) | waiting:
            if profile not in waiting or any(self._is_live(core.get(profile)) for core in self.cores):
                self._down_since.pop(profile, None)
                continue
            since = self._down_since.setdefault(profile, now)
            if now - since > NO_WORKER_TIMEOUT_S:
                why = "; ".join(sorted({w for (_, p),
                                        (_, w) in self._broken.items() if p == profile})) or "still starting"
                self._fail_waiting(profile, f"no judge worker ({profile}) could be started for "
                                            f"{NO_WORKER_TIMEOUT_S:g} s: {why}")
                self._down_since[profile] = now

    def _fail_waiting(self, profile: str, why: str) -> None:
        for job in [j for j in self._ready if j.profile == profile]:
            self._fail_pending(job, why)

    def _fail_pending(self, job: PoolJob, why: str) -> None:
        """Every test of `job` not handed to a worker yet ends as SE (`why`)."""
        while job.pending and not job.finished and not job.stopped:
            index = job.pending.popleft()
            job.inflight += 1
            self._deliver(Sent(0, job, index, -1, 0.0), RawRun(error=why))

    # -- scheduling ------------------------------------------------------------------------------
    def _schedule(self) -> None:
        """Hand ready tests to workers; each worker's new frames then go out in one send."""
        touched: list[WarmWorker] = []
        while self._ready:
            job = self._ready[0]
            if job.finished or not job.pending or job.stopped or (job.stop and job.inflight):
                self._ready.popleft()
                job.in_ready = False
                continue
            worker = self._pick(job)
            if worker is None:
                break  # every core is full, busy with the other profile, or holds other limits
            self._dispatch(worker, job)
            if worker not in touched:
                touched.append(worker)
        for worker in touched:
            self._flush(worker)

    def _pick(self, job: PoolJob) -> WarmWorker | None:
        best = None
        for index, core in enumerate(self.cores):
            worker = core.get(job.profile)
            if not self._is_live(worker):
                key = (index, job.profile)
                if key not in self._starting and key not in self._broken:
                    self._launch(index, job.profile, worker)  # first use of this profile on this core
                continue
            assert worker is not None
            if any(w.outstanding for profile, w in core.items() if profile != job.profile):
                continue
            if worker.outstanding and worker.cgroup_key != job.limits_key:
                continue
            if worker.capacity() <= 0:
                continue
            if best is None or len(worker.outstanding) < len(best.outstanding):
                best = worker
        return best

    def _dispatch(self, worker: WarmWorker, job: PoolJob) -> None:
        if not worker.outstanding:
            worker.apply_limits(job.limits)
        count = 1 if job.stop else min(worker.capacity(), len(job.pending),
                                       max(1, math.ceil(len(job.pending) / len(self.cores))))
        for _ in range(count):
            index = job.pending.popleft()
            key, program = job.program(index)
            slot = worker.slot_for(key, program)
            if slot is None:  # every slot is named by a queued test: wait for reports
                job.pending.appendleft(index)
                break
            payload, stdin = job.tests[index]
            worker.send_test(job, index, slot, payload, stdin, job.limits)
            job.inflight += 1

    def _flush(self, worker: WarmWorker) -> None:
        """Send what the socket takes now (the rest when it polls writable: `_update_watch`)."""
        if worker.sock is None:
            return
        try:
            worker.flush()
        except OSError as exc:
            # the supervisor is gone; what it reported before going is read and delivered first
            # (a test it finished must not become SE, an unclean sweep must not be run again)
            if self._receive(worker):
                self._worker_failed(worker, f"cannot hand tests over: {exc}")

    def _stop_workers(self) -> None:
        for worker in self._workers():
            worker.stop()
