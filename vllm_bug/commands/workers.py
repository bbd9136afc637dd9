"""One function over many inputs in worker processes, each input bounded in time and in memory.

A worker that dies (killed, or by the out-of-memory killer) or overruns its time costs only the input
it was working on: that input's result is a Failure saying why, a fresh worker takes its place, and
the run goes on. Workers take one input at a time, so the parent always knows which input that was.
Memory is bounded inside each worker (RLIMIT_AS, where the platform has it): the bound is what the
worker may add to the address space it starts with (a forked worker starts with its parent's, which
may be large: a parent that loaded Ray reserves gigabytes it never touches). An allocation past the
bound raises MemoryError there, which the function may turn into its own answer.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from vllm_bug.errors import VllmBugError

_TICK_S = 0.25


@dataclass(frozen=True)
class Limits:
    seconds: float
    memory_bytes: int | None = None


@dataclass(frozen=True)
class Failure:
    reason: str


def map_isolated(
    func: Callable[[Any], Any],
    items: Sequence[Any],
    jobs: int,
    limits: Limits,
    progress: Callable[[int], None] | None = None,
) -> list[Any]:
    """[func(item) or Failure] in the order of ITEMS, run by up to JOBS worker processes."""
    results: list[Any] = [None] * len(items)
    context = _context()
    pending = deque(range(len(items)))
    workers: list[_Worker] = []
    lost_idle = 0  # workers that died before being given anything: a broken machine, not a bad input
    try:
        while pending or any(w.job is not None for w in workers):
            workers = [w for w in workers if not w.gone]
            while len(workers) < min(jobs, len(pending) + sum(w.job is not None for w in workers)):
                workers.append(_Worker(context, func, limits))
            for worker in workers:
                if worker.job is None and pending:
                    index = pending.popleft()
                    if not worker.give(index, items):
                        pending.appendleft(index)
                        lost_idle += 1
            if lost_idle > 3 * max(1, jobs):
                raise VllmBugError("cannot keep worker processes running: they die as soon as they start")
            busy = [w for w in workers if w.job is not None]
            wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=_TICK_S)
            for worker in busy:
                done = worker.check(limits)
                if done is not None:
                    results[done[0]] = done[1]
                    if progress:
                        progress(1)
        return results
    finally:
        for worker in workers:
            worker.close()


def _context() -> Any:
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")  # workers inherit what the parent imported
    return multiprocessing.get_context()


class _Worker:
    def __init__(self, context: Any, func: Callable[[Any], Any], limits: Limits) -> None:
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end, func, limits.memory_bytes), daemon=True)
        self.process.start()
        child_end.close()
        self.job: int | None = None
        self.started = 0.0
        self.gone = False

    def give(self, index: int, items: Sequence[Any]) -> bool:
        """Hand over one input; False if the worker died while idle (it never got the input)."""
        try:
            self.conn.send((index, items[index]))
        except (OSError, ValueError):
            self._end()
            return False
        self.job, self.started = index, time.monotonic()
        return True

    def check(self, limits: Limits) -> tuple[int, Any] | None:
        """(input index, its result or a Failure) once the input is done with, else None."""
        index = self.job
        assert index is not None
        if self.conn.poll():
            try:
                done, result = self.conn.recv()
            except (EOFError, OSError):
                pass  # it died; the exit code says how
            else:
                self.job = None
                return done, result
        if not self.process.is_alive():
            self.process.join(1)
            self._end()
            return index, Failure(_death(self.process.exitcode))
        if time.monotonic() - self.started > limits.seconds:
            self._end()
            return index, Failure(f"took longer than {limits.seconds:g} s: stopped")
        return None

    def close(self) -> None:
        if self.gone:
            return
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(0.5 if self.job is None else 0)
        self._end()

    def _end(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()
        self.job = None
        self.gone = True


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory?)" if -exitcode == signal.SIGKILL else ""
        return f"its worker process was killed by {name}{hint}"
    return f"its worker process exited with code {exitcode} before answering"


def _serve(conn: Connection, func: Callable[[Any], Any], memory_bytes: int | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: stopping is the parent's call
    _limit_memory(memory_bytes)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        index, item = job
        try:
            result = func(item)
        except MemoryError:
            result = Failure("needed more memory than one input may use")
        except BaseException as exc:  # noqa: BLE001 - one input's failure is its row, not the run's end
            result = Failure(f"internal error: {type(exc).__name__}: {exc}")
        try:
            conn.send((index, result))
        except (OSError, ValueError):
            return


def _address_space_in_use() -> int:
    """This process's virtual size in bytes (Linux /proc), or 0 where it cannot be read."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[0])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_memory(memory_bytes: int | None) -> None:
    if not memory_bytes:
        return
    try:
        import resource
    except ImportError:  # not on this platform
        return
    memory_bytes += _address_space_in_use()
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            memory_bytes = min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))
    except (ValueError, OSError):
        pass
