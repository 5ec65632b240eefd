"""A simulated clock for live-mode tests: the session's time moves only when every thread that reads it waits, so a
test sees the same ticks, pushes and frames on a quiet machine and on a loaded one (real-time figures are
``python -m lsd_jax.bench --live``'s)."""

from __future__ import annotations

import threading
import time

REAL_POLL_S = 0.005  # real seconds between looks at threads that ended or events set from outside the clock
MIN_STEP_S = 1e-6  # a wait moves time at least this much: a tick's due time computed back from the clock can
# round to just before the tick (floor((t0 + k / fps - t0) * fps) == k - 1), and a wait of 0 would spin forever
REAL_LIMIT_S = 300.0  # real seconds a test's sleep may take: only to fail rather than hang (a loaded CI machine)


class SimulatedClock:
    """Seconds that start at ``start``. A thread that calls the clock takes part: time moves on only while every
    such thread (still alive) waits in :meth:`wait` / :meth:`sleep`, to the earliest of their deadlines; the work
    between waits takes no time unless it calls :meth:`advance`. The test's own thread takes part too once it reads
    the clock (``LiveRenderer.start`` does), so the session stands still between the test's :meth:`sleep` calls."""

    def __init__(self, start: float = 0.0):
        self._now = float(start)
        self._cv = threading.Condition()
        self._members: dict[threading.Thread, float | None] = {}  # thread -> deadline while it waits, else None

    def __call__(self) -> float:
        with self._cv:
            self._members.setdefault(threading.current_thread(), None)
            return self._now

    def advance(self, seconds: float) -> None:
        """Time passes now (work that takes ``seconds``), whoever waits."""
        with self._cv:
            self._now += seconds
            self._cv.notify_all()

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of the session's time pass (the test's thread)."""
        target = self() + seconds
        self.wait(None, seconds, real_limit=REAL_LIMIT_S)
        assert self() >= target, "the simulated clock stood still (a thread of the session never waited)"

    def wait(self, event: threading.Event | None, seconds: float, real_limit: float | None = None) -> bool:
        """Wait ``seconds`` or until ``event`` is set (True then)."""
        me = threading.current_thread()
        t = time.monotonic()
        with self._cv:
            self._members.setdefault(me, None)
            deadline = self._now + max(MIN_STEP_S, seconds)
            try:
                while True:
                    if event is not None and event.is_set():
                        return True
                    if self._now >= deadline:
                        return False
                    if real_limit is not None and time.monotonic() - t > real_limit:
                        return False
                    self._members[me] = deadline
                    self._move()
                    if self._now < deadline:
                        self._cv.wait(REAL_POLL_S)
            finally:
                self._members[me] = None

    def _move(self) -> None:
        """Jump to the earliest deadline once every live member waits (under the lock)."""
        self._members = {t: d for t, d in self._members.items() if t.is_alive()}
        deadlines = list(self._members.values())
        if deadlines and all(d is not None for d in deadlines):
            self._now = max(self._now, min(deadlines))
            self._cv.notify_all()
