"""cma_es solves CartPole-v1 (final mean >= 475 over 20 fresh episodes) within 20,000 evals."""

import json
import time

import pytest

from conftest import final_of, gen_lines, run_script


def test_cma_es_solves_cartpole(tmp_path):
    t = time.perf_counter()
    p = run_script(["--method", "cma_es", "--max-evals", 20000], out_dir=tmp_path)
    wall = time.perf_counter() - t
    assert p.returncode == 0, p.stderr
    final = final_of(p.stdout)
    print(f"\ncma_es solved CartPole-v1: {final['evals']} evals, {len(gen_lines(p.stdout))} generations, "
          f"final mean {final['mean']:.1f} over {final['episodes']} episodes, {wall:.1f}s wall")
    assert final["solved"] and final["mean"] >= 475 and final["episodes"] == 20
    assert final["evals"] <= 20000
    assert json.loads((tmp_path / "result.json").read_text())["solved"] is True


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 11))
def test_cma_es_solves_cartpole_many_seeds(seed, tmp_path):
    p = run_script(["--method", "cma_es", "--max-evals", 20000, "--seed", seed], out_dir=tmp_path)
    assert p.returncode == 0, p.stderr
    assert final_of(p.stdout)["solved"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["openai_es", "island_model", "random_search"])
def test_other_methods_on_cartpole(method, tmp_path):
    p = run_script(["--method", method, "--max-evals", 20000, "--seed", 1], out_dir=tmp_path)
    assert p.returncode == 0, p.stderr
    final = final_of(p.stdout)
    print(f"\n{method} on CartPole-v1: {final}")
    assert final["best_ever"] >= 195  # far above a random policy (~20)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["Acrobot-v1", "Pendulum-v1", "MountainCarContinuous-v0"])
def test_other_envs_run(env_id, tmp_path):
    p = run_script(["--method", "cma_es", "--env", env_id, "--max-evals", 200, "--eval-episodes", 2],
                   out_dir=tmp_path)
    assert p.returncode == 0, p.stderr
    final = final_of(p.stdout)
    assert final["episodes"] == 20 and isinstance(final["solved"], bool)
