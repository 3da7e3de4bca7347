"""Evaluation: seeds per generation, vector vs scalar backends, pool vs in-process."""

import numpy as np
import pytest

from gaia_exp.evaluation import EpisodeRunner, GymConfig, GymEvaluator
from gaia_exp.run import STREAM_FINAL, STREAM_TRAIN, derive_seeds


@pytest.fixture(scope="module")
def population():
    runner = EpisodeRunner(GymConfig("CartPole-v1", (8,)))
    rng = np.random.default_rng(0)
    return rng.standard_normal((12, runner.n_params)) * 0.7


def test_seeds_reproducible_and_distinct():
    a = derive_seeds(7, STREAM_TRAIN, 1, 5)
    assert a == derive_seeds(7, STREAM_TRAIN, 1, 5)
    assert a != derive_seeds(7, STREAM_TRAIN, 2, 5)
    assert a != derive_seeds(8, STREAM_TRAIN, 1, 5)
    assert a != derive_seeds(7, STREAM_FINAL, 1, 5)
    assert len(set(a)) == 5


def test_same_seeds_same_episodes_for_all_candidates(population):
    runner = EpisodeRunner(GymConfig("CartPole-v1", (8,)))
    twins = np.stack([population[0], population[0], population[0]])
    r = runner.returns(twins, [11, 12, 13])
    assert (r == r[0]).all()
    assert not (runner.returns(twins[:1], [21, 22, 23]) == r[:1]).all()


def test_vector_and_scalar_backends_agree(population):
    seeds = [1, 2, 3, 4]
    vec = EpisodeRunner(GymConfig("CartPole-v1", (8,), backend="vector"))
    sca = EpisodeRunner(GymConfig("CartPole-v1", (8,), backend="scalar"))
    assert vec.vectorized and not sca.vectorized
    np.testing.assert_array_equal(vec.returns(population, seeds), sca.returns(population, seeds))


def test_max_episode_steps_caps_returns(population):
    r = EpisodeRunner(GymConfig("CartPole-v1", (8,), max_episode_steps=20)).returns(population, [1, 2])
    assert r.max() <= 20


@pytest.mark.parametrize("backend, n", [("scalar", 12), ("vector", 200)])
def test_pool_matches_in_process(backend, n, monkeypatch):
    cfg = GymConfig("CartPole-v1", (8,), max_episode_steps=200, backend=backend)
    one = GymEvaluator(cfg, 1)
    two = GymEvaluator(cfg, 2)
    calls = []
    real_map_async = two.pool.map_async
    monkeypatch.setattr(two.pool, "map_async", lambda f, chunks: calls.append(len(chunks)) or real_map_async(f, chunks))
    population = np.random.default_rng(0).standard_normal((n, one.n_params)) * 0.7
    try:
        assert two.pool is not None and one.pool is None
        for seeds in ([5, 6, 7], [8]):
            np.testing.assert_array_equal(one.returns(population, seeds), two.returns(population, seeds))
    finally:
        one.close()
        two.close()
    # scalar envs: always split over the workers; vector env: only batches of >= 2 x 256 episodes
    assert calls == ([2, 2] if backend == "scalar" else [2])
    assert two.pool_batches == len(calls) and one.pool_batches == 0


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "MountainCarContinuous-v0", "Acrobot-v1"])
def test_other_envs_scalar_backend(env_id):
    runner = EpisodeRunner(GymConfig(env_id, (4,), max_episode_steps=30))
    thetas = np.random.default_rng(1).standard_normal((3, runner.n_params))
    r = runner.returns(thetas, [1, 2])
    assert r.shape == (3, 2) and np.isfinite(r).all()
    np.testing.assert_array_equal(r, runner.returns(thetas, [1, 2]))



def _worker_identity(_):
    """Run in a pool worker: which process, which EpisodeRunner, how many envs it has built."""
    import os

    from gaia_exp import evaluation

    return os.getpid(), id(evaluation._RUNNER), len(evaluation._RUNNER._envs)


def test_pool_made_once_per_run_and_workers_keep_their_envs(capsys, monkeypatch, tmp_path):
    """A whole run (many generations, validation, final evaluation) makes one pool; its worker
    processes live for the whole run and keep the envs they built."""
    import json
    import multiprocessing.pool

    from gaia_exp import cli, evaluation

    made, batches = [], []

    class CountingPool(multiprocessing.pool.Pool):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

        def map_async(self, func, iterable, *a, **kw):
            if func is evaluation._worker_returns:
                batches.append(len(iterable))
            return super().map_async(func, iterable, *a, **kw)

    monkeypatch.setattr(multiprocessing.pool, "Pool", CountingPool)
    identities = []
    real_close = evaluation.GymEvaluator.close

    def close_after_looking(self, terminate=False):
        if self.pool is not None and not terminate:
            identities.extend(self.pool.map(_worker_identity, range(8), chunksize=1))
        real_close(self, terminate)

    monkeypatch.setattr(evaluation.GymEvaluator, "close", close_after_looking)
    monkeypatch.setenv("GAIA_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("GAIA_JOB_PARAMS", json.dumps({"backend": "scalar", "pop_size": 8, "hidden": [4],
                                                       "max_episode_steps": 30, "stop_when_solved": False}))
    code = cli.main(["--method", "cma_es", "--max-evals", "80", "--workers", "2", "--eval-episodes", "2"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert sum(line.startswith("Gen ") for line in out.out.splitlines()) == 10
    assert len(made) == 1  # 10 generations and the final evaluation, one pool
    assert batches == [2] * 10  # every generation split over both workers (the final evaluation: in-process)
    pids = {pid for pid, _, _ in identities}
    assert 1 <= len(pids) <= 2 and pids <= {p.pid for p in made[0]._pool}
    for pid in pids:  # one EpisodeRunner per process, which has kept the envs of past generations
        runners = {(rid, n) for p, rid, n in identities if p == pid}
        assert len(runners) == 1
        ((_, n_envs),) = runners
        assert n_envs == 8  # grown beyond the probe env for its chunks (4 candidates x 2 episodes)


DEAD_IDLE_WORKER = """
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from gaia_exp.evaluation import GymConfig, GymEvaluator
for i in range(4):
    ev = GymEvaluator(GymConfig("CartPole-v1", (4,), max_episode_steps=10, backend="scalar"), 2)
    thetas = np.zeros((4, ev.n_params))
    ev.returns(thetas, [1])
    # one idle worker holds the task queue's read lock (a kill leaves it locked: the next batch
    # never finishes), the other does not (the next batch finishes at once): kill each in turn
    os.kill(sorted(ev._worker_pids)[i % 2], signal.SIGKILL)
    time.sleep(0.3)  # the pool's helper thread replaces it within 0.1 s
    try:
        for _ in range(3):
            ev.returns(thetas, [1])
        print("unnoticed")
    except RuntimeError as exc:
        print("raised:", exc)
    ev.close(terminate=True)
sys.stdout.flush()
os._exit(0)  # as run_all.py does after a kill
"""


def test_worker_that_died_between_batches_is_an_error():
    """A worker killed while idle is replaced by the pool; the next batch must still report it,
    however fast that batch is (it used to be noticed only by a batch slower than one 50 ms poll,
    so a run with short episodes carried on, or hung if the dead worker held the queue's lock).
    In a subprocess: a killed pool must not be left in the test process."""
    import subprocess
    import sys
    from pathlib import Path

    p = subprocess.run([sys.executable, "-c", DEAD_IDLE_WORKER, str(Path(__file__).resolve().parent.parent)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["raised: an evaluation worker process died (killed, or out of memory?)"] * 4


LATE_WORKER = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from gaia_exp.evaluation import _start_orphan_watchdog
parent = os.getpid()  # what the pool's maker passes to its workers
child = os.fork()
if child:  # the parent dies before its worker has started (GAIA killing the run)
    print(child, flush=True)
    os._exit(0)
devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, 1)  # the worker must not keep the test's pipes open
os.dup2(devnull, 2)
while os.getppid() == parent:
    time.sleep(0.01)  # re-parented: only now does the worker run its initializer
_start_orphan_watchdog(parent, period=0.05)
time.sleep(60)
"""


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="uses fork and /proc")
def test_worker_started_after_its_parent_died_exits():
    """A pool worker forked while the run is being killed may run its initializer only once
    it has been re-parented: its watchdog must watch the pool's maker (passed from the parent),
    not whatever os.getppid() says then, or the worker lives for ever holding the run's pipes."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    p = subprocess.run([sys.executable, "-c", LATE_WORKER, str(Path(__file__).resolve().parent.parent)],
                       capture_output=True, text=True, timeout=30)
    worker = int(p.stdout)
    deadline = time.monotonic() + 5
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(worker):
        __import__("os").kill(worker, 9)
        pytest.fail("the orphaned worker did not exit")
