"""Fitness evaluation.

- Analytic objectives are evaluated in-process, vectorised over the population (a pool would
  only add overhead).
- Gymnasium envs: each process (the main one with ``workers=1``, else each worker of one
  ``multiprocessing.Pool`` made once per run) keeps its own :class:`EpisodeRunner` with its own
  env instances. A generation's candidates are split into one chunk per worker; a chunk's
  candidates x episodes all run in lockstep, so the MLP forward pass is one batched matmul per
  layer per time step for the whole chunk. Where gymnasium ships a numpy vector env (CartPole),
  the env step is batched too (``backend="vector"``); otherwise scalar envs are stepped in a
  tight loop (``backend="scalar"``).

Every candidate of one call is run on the same episode seeds, so the episodes' start states are
the same for all candidates of a generation and the same from run to run.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

import numpy as np

from .curriculum import EnvDifficulty
from .envs import ANALYTIC, rastrigin
from .policy import make_policy


@dataclass(frozen=True)
class GymConfig:
    """What a worker process needs to build its envs and policy (picklable)."""

    env_id: str
    hidden: tuple[int, ...]
    max_episode_steps: int | None = None
    backend: str = "auto"  # auto | vector | scalar
    policy: str = "mlp"  # mlp | mlp_clip | neuromod (gaia_exp.policy)
    env_kwargs: tuple[tuple[str, object], ...] = ()  # keyword arguments of gym.make, sorted by name

    def make(self, gym):
        return gym.make(self.env_id, disable_env_checker=True, **dict(self.env_kwargs))


class EpisodeRunner:
    """Runs episodes of many candidate policies in lockstep, in one process."""

    def __init__(self, cfg: GymConfig):
        import gymnasium as gym

        self.cfg = cfg
        self._gym = gym
        probe = cfg.make(gym)
        self.max_steps = cfg.max_episode_steps or probe.spec.max_episode_steps or 1000
        self.policy = make_policy(cfg.policy, probe.observation_space.shape[0], probe.action_space, cfg.hidden)
        self._envs = [probe.unwrapped]  # scalar envs, grown on demand
        self.difficulty = EnvDifficulty(cfg.env_id, probe.unwrapped)
        spec = gym.spec(cfg.env_id)
        has_vector = spec.vector_entry_point is not None and hasattr(probe.unwrapped, "state")
        if cfg.backend == "vector" and not has_vector:
            raise ValueError(f"{cfg.env_id} has no gymnasium vector env; use backend 'scalar' or 'auto'")
        self.vectorized = has_vector and cfg.backend in ("auto", "vector")
        self._venvs: dict[int, object] = {}

    @property
    def n_params(self) -> int:
        return self.policy.n_params

    def returns(self, thetas: np.ndarray, seeds, difficulty: float = 1.0) -> np.ndarray:
        """Episode returns, shape (n, K), of n flat parameter vectors on K seeded episodes, at a
        task difficulty (gaia_exp.curriculum; 1 = the env as named)."""
        thetas = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
        seeds = [int(s) for s in seeds]
        if thetas.shape[0] == 0:
            return np.zeros((0, len(seeds)))
        if self.vectorized:
            return self._returns_vector(thetas, seeds, difficulty)
        return self._returns_scalar(thetas, seeds, difficulty)[0]

    def visited_states(self, theta: np.ndarray, seeds, difficulty: float = 1.0, max_states: int = 2000):
        """Returns (shape (K,)) of one parameter vector on K seeded episodes, and up to
        ``max_states`` of the observations it saw (spread evenly over the episodes' steps), run
        in this process with scalar envs (the same returns as ``returns``)."""
        ret, states = self._returns_scalar(np.atleast_2d(theta), [int(s) for s in seeds], difficulty, record=True)
        if len(states) > max_states:
            states = states[np.linspace(0, len(states) - 1, max_states).astype(int)]
        return ret[0], states

    # -- scalar envs stepped in a tight loop ------------------------------------------------
    def _returns_scalar(self, thetas, seeds, difficulty=1.0, record=False):
        n, K = thetas.shape[0], len(seeds)
        need = n * K
        while len(self._envs) < need:
            self._envs.append(self.cfg.make(self._gym).unwrapped)
        envs = self._envs[:need]
        layers = self.policy.unpack(thetas)
        state = self.policy.begin(layers, n, K)
        obs = np.empty((n, K, self.policy.sizes[0]))
        flat_obs = obs.reshape(need, -1)
        for i, env in enumerate(envs):
            self.difficulty.apply(env, difficulty)
            o, _ = env.reset(seed=seeds[i % K])
            flat_obs[i] = o
        ret = np.zeros(need)
        active = list(range(need))
        seen = []
        for _ in range(self.difficulty.max_steps(difficulty, self.max_steps)):
            if record:
                seen.append(flat_obs[active].copy())
            acts = self.policy.act(layers, obs, state)
            flat_acts = acts.reshape(need, -1) if not self.policy.discrete else acts.reshape(need)
            still = []
            for i in active:
                a = flat_acts[i]
                o, r, term, trunc, _ = envs[i].step(int(a) if self.policy.discrete else a)
                ret[i] += r
                if not (term or trunc):
                    flat_obs[i] = o
                    still.append(i)
            active = still
            if not active:
                break
        states = np.concatenate(seen) if seen else np.zeros((0, self.policy.sizes[0]))
        return ret.reshape(n, K), states

    # -- gymnasium's numpy vector env (CartPole) -------------------------------------------
    def _initial_states(self, seeds):
        """Start states of the scalar env reset with each seed (same as the scalar backend)."""
        env = self._envs[0]
        out = []
        for s in seeds:
            env.reset(seed=s)
            out.append(np.array(env.state, dtype=np.float64))
        return np.stack(out, axis=1)  # (state_dim, K)

    def _returns_vector(self, thetas, seeds, difficulty=1.0):
        n, K = thetas.shape[0], len(seeds)
        need = n * K
        venv = self._venvs.get(need)
        if venv is None:
            if len(self._venvs) >= 8:
                self._venvs.pop(next(iter(self._venvs))).close()
            venv = self._gym.make_vec(self.cfg.env_id, num_envs=need, vectorization_mode="vector_entry_point",
                                      max_episode_steps=self.max_steps, **dict(self.cfg.env_kwargs)).unwrapped
            self._venvs[need] = venv
        self.difficulty.apply(venv, difficulty)
        venv.reset(seed=seeds[0])
        venv.state = np.tile(self._initial_states(seeds), (1, n))  # column c*K + k = episode k
        obs = venv.state.T.astype(np.float32).astype(np.float64).reshape(n, K, -1)
        layers = self.policy.unpack(thetas)
        state = self.policy.begin(layers, n, K)
        ret = np.zeros(need)
        alive = np.ones(need, dtype=bool)
        for _ in range(self.difficulty.max_steps(difficulty, self.max_steps)):
            acts = self.policy.act(layers, obs, state).reshape(need)
            o, r, term, trunc, _ = venv.step(acts)
            ret += r * alive
            alive &= ~(term | trunc)
            if not alive.any():
                break
            obs = o.astype(np.float64).reshape(n, K, -1)
        return ret.reshape(n, K)

    def close(self):
        for e in self._envs:
            e.close()
        for v in self._venvs.values():
            v.close()


# -------------------------------------------------------------------------------------------
# Pool plumbing: one EpisodeRunner per worker process, built by the initializer.

_RUNNER: EpisodeRunner | None = None
_KILLED_POOLS: list = []


def _init_worker(cfg: GymConfig, parent: int | None = None) -> None:
    global _RUNNER
    # The parent handles Ctrl-C and SIGTERM and kills the pool; workers just die.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _start_orphan_watchdog(os.getppid() if parent is None else parent)
    _RUNNER = EpisodeRunner(cfg)


def _start_orphan_watchdog(parent: int, period: float = 0.5) -> None:
    """Exit this worker when its parent (the pid of the process that made the pool) is gone.
    The pool replaces dead workers from a helper thread, so a replacement forked while the
    parent is being killed would otherwise wait on its task queue forever, keeping the run's
    stdout/stderr pipes open. ``parent`` must come from the parent, not from ``os.getppid()``
    here: such a replacement may only get here once its parent is dead and it has been
    re-parented, and would then watch the wrong process for ever."""
    if os.getppid() != parent:
        os._exit(0)

    def watch():
        while True:
            time.sleep(period)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="gaia-orphan-watchdog", daemon=True).start()


def pool_was_killed() -> bool:
    """True once a pool has been killed: the process must then leave with ``os._exit``."""
    return bool(_KILLED_POOLS)


def _worker_returns(args) -> np.ndarray:
    thetas, seeds, difficulty = args
    return _RUNNER.returns(thetas, seeds, difficulty)


# A CartPole vector-env time step costs about 60 us + 0.22 us per episode (2-core dev machine), so a
# chunk costs nearly as much as the whole batch until batches are large. Measured for pop 16-64 x
# 5 episodes (CPU time per chunk): a 2-way split would be at best 1.0-1.16x faster on an idle
# machine, for 1.4-1.8x the CPU per eval; on a shared machine (sched autogroup: a run's processes
# share one CPU slice) it ran at 0.5-0.8x the speed of in-process evaluation. Hence in-process
# below 2 x 256 episodes.
VECTOR_MIN_EPISODES_PER_CHUNK = 256


def _active_children():
    import multiprocessing as mp

    return mp.active_children()


class GymEvaluator:
    """Episode returns of populations, in-process (workers=1) or over a process pool.

    Scalar envs: a generation is split into one chunk per worker. Vectorized envs (CartPole):
    only batches of at least 2 x 256 episodes are split; smaller ones run in-process, which is
    faster and uses a fraction of the CPU (see VECTOR_MIN_EPISODES_PER_CHUNK).
    """

    def __init__(self, cfg: GymConfig, workers: int):
        self.cfg = cfg
        self.workers = max(1, int(workers))
        self.local = EpisodeRunner(cfg)  # also gives n_params; used directly when workers == 1
        self.pool = None
        self.pool_batches = 0  # batches split over the pool (the rest ran in-process)
        if self.workers > 1:
            import multiprocessing as mp

            self.pool = mp.get_context().Pool(self.workers, initializer=_init_worker, initargs=(cfg, os.getpid()))
            self._worker_pids = {p.pid for p in self.pool._pool}  # this pool's, not other children

    @property
    def n_params(self) -> int:
        return self.local.n_params

    def returns(self, thetas: np.ndarray, seeds, difficulty: float = 1.0) -> np.ndarray:
        thetas = np.atleast_2d(thetas)
        n_chunks = min(self.workers, thetas.shape[0])
        if self.local.vectorized:
            # A vector env step costs ~50 us whatever its size up to a few hundred envs, so
            # splitting a small batch over processes only pays that cost once per process:
            # split only when every chunk still has VECTOR_MIN_EPISODES_PER_CHUNK episodes.
            n_chunks = min(n_chunks, thetas.shape[0] * len(seeds) // VECTOR_MIN_EPISODES_PER_CHUNK)
        if self.pool is None or n_chunks <= 1:
            return self.local.returns(thetas, seeds, difficulty)
        # A worker that died while idle (between two batches) has been replaced by the pool
        # without losing a task; it is still an error (OOM killer, ...), and checking here makes
        # that independent of how fast the next batch happens to finish.
        self._check_workers()
        self.pool_batches += 1
        chunks = [c for c in np.array_split(thetas, n_chunks) if len(c)]
        pending = self.pool.map_async(_worker_returns, [(c, list(seeds), difficulty) for c in chunks])
        # Wait in short slices: a signal (SIGTERM from GAIA's cancel) may be delivered to one of the
        # pool's helper threads, and an untimed wait in the main thread would then never wake up
        # to run the Python-level handler.
        while not pending.ready():
            pending.wait(0.05)
            if not pending.ready():
                # the pool would replace the process but its task is lost: never finishes
                self._check_workers()
        parts = pending.get()
        return np.concatenate(parts, axis=0)

    def _check_workers(self) -> None:
        if not self._worker_pids <= {p.pid for p in _active_children()}:
            raise RuntimeError("an evaluation worker process died (killed, or out of memory?)")

    def close(self, terminate: bool = False) -> None:
        """Stop the pool: gracefully, or (terminate=True) by killing its processes.

        After a kill the process must leave with ``os._exit``: a worker killed while holding the
        pool's task-queue lock would make ``Pool.terminate()`` and the pool's exit-time finalizer
        wait forever (which is exactly what happens when GAIA SIGTERMs the whole process group).
        """
        if self.pool is not None:
            if terminate:
                import multiprocessing as mp
                from multiprocessing.pool import TERMINATE

                _KILLED_POOLS.append(self.pool)  # dropping it would run its (hanging) finalizer
                # The pool's helper thread replaces dead workers: tell it to stop (it checks on
                # its next wake-up, which the first kill causes), then keep killing until none
                # is left for a moment; a late replacement exits by its watchdog.
                handler = getattr(self.pool, "_worker_handler", None)
                if handler is not None:
                    handler._state = TERMINATE
                quiet_since = time.monotonic()
                deadline = quiet_since + 2.0
                while time.monotonic() < deadline and time.monotonic() - quiet_since < 0.3:
                    children = mp.active_children()
                    for proc in children:
                        proc.kill()
                    if children:
                        quiet_since = time.monotonic()
                    time.sleep(0.02)
            else:
                self.pool.close()
                self.pool.join()
            self.pool = None
        self.local.close()


class AnalyticEvaluator:
    """Negated analytic objective, vectorised over the population, in-process."""

    def __init__(self, name: str, dim: int):
        self.name = name
        self.fn = ANALYTIC[name]
        self.n_params = dim

    def returns(self, thetas: np.ndarray, seeds=None, difficulty: float = 1.0) -> np.ndarray:
        """-f(x) as a (n, 1) array. ``difficulty`` < 1 scales rastrigin's cosine term (a
        continuation: 0 is the sphere); the sphere has no easier version."""
        X = np.atleast_2d(np.asarray(thetas, dtype=np.float64))
        if self.name == "rastrigin" and difficulty < 1.0:
            return -rastrigin(X, amplitude=10.0 * max(float(difficulty), 0.0))[:, None]
        return -self.fn(X)[:, None]

    def close(self, terminate: bool = False) -> None:
        pass
