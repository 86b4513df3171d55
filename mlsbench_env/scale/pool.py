"""Many episodes in flight from one asyncio program: ``await env.areset()``, ``await
env.astep(action)``.

A trainer keeps dozens of episodes going while their experiments run in sandbox processes.
Each step runs in a worker thread (the env's work is waiting on sandbox processes, so threads
suffice); one episode runs one step at a time. Back-pressure keeps a small machine from
thrashing or hanging when asked for many episodes:

- ``max_live``: episodes holding a sandbox at once (from reset to their end or close). Further
  resets queue. An episode that ends gives its sandbox back at once (the env is closed; its
  trajectory stays in ``run_dir``).
- ``max_experiments``: sandbox commands running at once on the machine (``EnvConfig``'s option
  of that name, default: one per CPU core); further commands wait, unbilled.
- ramping: resets start at most ``ramp_per_s`` a second after a burst of ``ramp_burst``, so
  256 episodes do not start their first experiments at the same instant.

A trainer that awaits every reset before stepping any episode needs ``max_live`` >= its batch
(the queued resets wait for episodes that never step); ``reset_timeout_s`` turns that wait into
a ``PoolTimeout`` that says so instead of a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import gymnasium as gym

from mlsbench_env.episode import Agent, Episode, EpisodeOutcome
from mlsbench_env.errors import PoolTimeout


@dataclass
class PoolStats:
    live: int = 0  # episodes holding a sandbox now
    peak_live: int = 0
    waiting: int = 0  # resets queued for a slot
    steps_running: int = 0
    resets: int = 0
    steps: int = 0
    episodes_ended: int = 0


class EnvPool:
    """Creates and drives ``AsyncEnv``s with shared limits (see the module docstring)."""

    def __init__(
        self,
        *,
        max_live: int | None = None,
        max_experiments: int | None = None,
        ramp_per_s: float | None = 4.0,
        ramp_burst: int | None = None,
        reset_timeout_s: float | None = None,
        threads: int = 256,
    ):
        cores = os.cpu_count() or 1
        self.max_live = max_live
        self.max_experiments = max_experiments or cores
        self.ramp_per_s = ramp_per_s
        self.ramp_burst = ramp_burst or cores
        self.reset_timeout_s = reset_timeout_s
        self.stats = PoolStats()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlsbench")
        self._live = asyncio.Semaphore(max_live) if max_live else None
        self._ramp_lock = asyncio.Lock()
        self._tokens = float(self.ramp_burst)
        self._last: float | None = None
        self._envs: list[AsyncEnv] = []

    # ------------------------------------------------------------------ creating envs
    def make(self, task: str, **options) -> AsyncEnv:
        """A ``ResearchEnv`` for ``task`` (options as ``gym.make``) driven by this pool."""
        from mlsbench_env.env import ResearchEnv

        options.setdefault("max_experiments", self.max_experiments)
        return self.wrap(ResearchEnv(task, **options))

    def wrap(self, env: gym.Env) -> AsyncEnv:
        """Drive any gymnasium env (a ``RemoteEnv`` too) through this pool."""
        aenv = AsyncEnv(env, self)
        self._envs.append(aenv)
        return aenv

    # ------------------------------------------------------------------ plumbing
    def _submit(self, fn, *args, **kwargs) -> Future:
        return self._executor.submit(partial(fn, *args, **kwargs))

    async def _acquire(self) -> None:
        if self._live is not None:
            self.stats.waiting += 1
            try:
                if self.reset_timeout_s is None:
                    await self._live.acquire()
                else:
                    await asyncio.wait_for(self._live.acquire(), self.reset_timeout_s)
            except TimeoutError:
                raise PoolTimeout(
                    f"a reset waited {self.reset_timeout_s:g} s for one of the pool's "
                    f"{self.max_live} episode slots (max_live); every slot is held by an episode "
                    "that has not ended. If you reset a whole batch before stepping any of it, "
                    "make max_live >= the batch size, or close episodes you no longer step."
                ) from None
            finally:
                self.stats.waiting -= 1
        self.stats.live += 1
        self.stats.peak_live = max(self.stats.peak_live, self.stats.live)

    def _release(self) -> None:
        self.stats.live -= 1
        if self._live is not None:
            self._live.release()

    async def _ramp(self) -> None:
        if not self.ramp_per_s:
            return
        loop = asyncio.get_running_loop()
        async with self._ramp_lock:  # FIFO: resets start in the order they asked
            now = loop.time()
            if self._last is not None:
                self._tokens = min(
                    self.ramp_burst, self._tokens + (now - self._last) * self.ramp_per_s
                )
            self._last = now
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self.ramp_per_s)
                self._tokens, self._last = 1.0, loop.time()
            self._tokens -= 1

    # ------------------------------------------------------------------ lifetime
    async def aclose(self) -> None:
        await asyncio.gather(*(e.aclose() for e in self._envs), return_exceptions=True)
        self._envs.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> EnvPool:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


class AsyncEnv:
    """One episode driven through an ``EnvPool``; ``env`` is the wrapped gymnasium env."""

    def __init__(self, env: gym.Env, pool: EnvPool):
        self.env, self.pool = env, pool
        self._lock = asyncio.Lock()
        self._live = False
        self._running: Future | None = None

    async def _call(self, fn, *args, **kwargs):
        """Run ``fn`` in a pool thread. A caller cancelled while it runs (a server whose client
        went away) leaves it running; the next call on this env waits for it first, so the env
        never runs two calls at once."""
        if self._running is not None and not self._running.done():
            with contextlib.suppress(Exception):  # its caller is gone; so is its result
                await asyncio.wrap_future(self._running)
        self._running = self.pool._submit(fn, *args, **kwargs)
        return await asyncio.shield(asyncio.wrap_future(self._running))

    @property
    def unwrapped(self):
        return self.env.unwrapped

    async def areset(self, *, seed: int | None = None, options: dict | None = None):
        async with self._lock:
            await self._hold()
            await self.pool._ramp()
            try:
                out = await self._call(self.env.reset, seed=seed, options=options)
            except BaseException:
                await self._give_back()
                raise
            self.pool.stats.resets += 1
            return out

    async def astep(self, action: str | dict):
        async with self._lock:
            stats = self.pool.stats
            stats.steps_running += 1
            try:
                out = await self._call(self.env.step, action)
            finally:
                stats.steps_running -= 1
            stats.steps += 1
            if (out[2] or out[3]) and self._live:
                stats.episodes_ended += 1
                await self._give_back()
            return out

    async def asnapshot(self):
        async with self._lock:
            return await self._call(self.unwrapped.snapshot)

    async def arestore(self, snap) -> str:
        async with self._lock:
            await self._hold()
            return await self._call(self.unwrapped.restore, snap)

    async def aclose(self) -> None:
        async with self._lock:
            if self._live:
                await self._give_back()
            else:
                await self._call(self.env.close)

    async def _hold(self) -> None:
        if not self._live:
            await self.pool._acquire()
            self._live = True

    async def _give_back(self) -> None:
        """Close the env (its sandbox and workspace go; its trajectory stays) and free its
        slot."""
        try:
            await self._call(self.env.close)
        finally:
            self._live = False
            self.pool._release()


async def arun_episode(
    env: AsyncEnv,
    agent: Agent,
    seed: int | None = 0,
    *,
    on_step=None,
    score_unsubmitted: bool = False,
    extra_records: Iterable[dict] = (),
) -> EpisodeOutcome:
    """``episode.run_episode`` for an ``AsyncEnv``: the same protocol, records and exit statuses;
    ``agent.act`` may be a coroutine function."""
    ep = Episode(env, agent, seed, on_step, score_unsubmitted)
    obs, info = await env.areset(seed=seed)
    with ep.playing():
        ep.begin(obs, info, extra_records)
        while ep.status is None:
            action = agent.act(ep.obs, ep.info)
            encoded = ep.encode(await action if inspect.isawaitable(action) else action)
            if encoded is not None:
                ep.stepped(await env.astep(encoded))
    with ep.ending() as unsubmitted:
        if unsubmitted:
            ep.scored(*await env._call(env.unwrapped.end_unsubmitted, ep.status))
    return ep.outcome()
