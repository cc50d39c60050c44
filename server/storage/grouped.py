"""Group calls to the database that arrive together: one transaction for many, as a group commit does.

A call made while a group is being run waits and goes with the others that arrived meanwhile, in
arrival order, in the next group (at most ``max_group``). Alone, a call runs at once, so a quiet
server answers as fast as before; a busy one does one database round for many callers (an audience
of thousands arriving at a plenary). If a group fails, it runs again in halves, in order, down to
single calls: a call that cannot succeed fails alone and the others still get their answers.

Callers wait for their answer even when their task is cancelled (a socket closing, the server
stopping), as they would for a write in a worker thread: nothing they asked for is half-done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio

log = logging.getLogger("forumlive.storage")

A = TypeVar("A")
R = TypeVar("R")


class Grouped(Generic[A, R]):
    def __init__(self, run: Callable[[list[A]], Awaitable[list[R]]], max_group: int = 500, name: str = "") -> None:
        """``run`` takes the group's arguments in order and returns one result for each."""
        self._run = run
        self._max = max_group
        self._name = name or getattr(run, "__name__", "group")
        self._queue: list[tuple[A, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None
        self.groups = 0  # groups that succeeded (for tests and metrics)

    async def __call__(self, item: A) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        with anyio.CancelScope(shield=True):  # anyio's cancellation (Starlette, the test client)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:  # asyncio's own: wait all the same, then go on being cancelled
                await asyncio.wait([future])
                raise

    async def _drain(self) -> None:
        group: list[tuple[A, asyncio.Future[R]]] = []
        try:
            while self._queue:
                group, self._queue = self._queue[: self._max], self._queue[self._max :]
                await self._run_group(group)
        finally:
            # Cancelled (the loop closing): nobody is left waiting for ever.
            stopped = RuntimeError(f"{self._name}: stopped")
            for _, future in group + self._queue:
                _settle(future, exc=stopped)

    async def _run_group(self, group: list[tuple[A, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run([item for item, _ in group])
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0][1], exc=exc)
                return
            log.warning("%s: a group of %d failed (%s); running it in halves", self._name, len(group), exc)
            half = len(group) // 2
            await self._run_group(group[:half])
            await self._run_group(group[half:])
            return
        self.groups += 1
        for (_, future), result in zip(group, results, strict=True):
            _settle(future, result)


def _settle(future: asyncio.Future[R], result: R | None = None, exc: BaseException | None = None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
