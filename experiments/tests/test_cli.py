"""run_all.py as GAIA runs it: a subprocess with GAIA_JOB_PARAMS and GAIA_OUTPUT_DIR."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import EXPERIMENTS, final_of, gen_lines, run_script
from gaia_exp import envs


def strip_time(lines):
    return [re.sub(r"\|\s*[0-9.]+s\s*$", "", line) for line in lines]


def test_list():
    p = run_script(["--list"])
    assert p.returncode == 0, p.stderr
    for name in ["cma_es", "openai_es", "random_search", "island_model", "curriculum_cma_es", "neuromod_cma_es",
                 "neuromod_island", "hybrid_cma_ff", "indirect_encoding", "ppo", "topology", "env_kwargs",
                 "CartPole-v1", "Acrobot-v1",
                 "MountainCarContinuous-v0", "Pendulum-v1", "LunarLander-v3", "BipedalWalker-v3",
                 "BipedalWalkerHardcore-v3", "sphere", "rastrigin",
                 "pop_size", "hidden", "dim"]:
        assert name in p.stdout


def test_help():
    p = run_script(["--help"])
    assert p.returncode == 0 and "--environment" in p.stdout and "--max-evals" in p.stdout


@pytest.mark.parametrize("params, needle", [
    ({"pop_sise": 32}, "unknown param(s) 'pop_sise'"),
    ({"n_islands": 3}, "unknown param(s) 'n_islands'"),
    ({"pop_size": "big"}, "param 'pop_size': expected an integer"),
    ({"hidden": [32, -1]}, "param 'hidden'"),
    ({"sigma0": -1}, "param 'sigma0': must be >= "),
    ("[1, 2]", "must be a JSON object"),
    ("{not json", "not valid JSON"),
])
def test_bad_params_exit_2(params, needle):
    p = run_script(["--method", "cma_es", "--max-evals", 10], params=params)
    assert p.returncode == 2
    assert needle in p.stderr
    assert p.stdout == ""
    if "unknown" in needle:
        assert "known params: " in p.stderr and "sigma0" in p.stderr and "hidden" in p.stderr


@pytest.mark.parametrize("args, needle", [
    (["--method", "nope"], "invalid choice"),
    (["--method", "cma_es", "--env", "NoSuchEnv-v9"], "unknown environment 'NoSuchEnv-v9'"),
    (["--method", "cma_es", "--max-evals", "0"], "--max-evals must be >= 1"),
    (["--env", "sphere"], "--method is required"),
    (["--method", "cma_es", "--env", "sphere", "--seed", "-1"], "--seed must be >= 0"),
])
def test_bad_command_line_exit_2(args, needle):
    p = run_script(args)
    assert p.returncode == 2 and needle in p.stderr


def test_analytic_params_rejected_for_gym_envs():
    p = run_script(["--method", "cma_es", "--env", "CartPole-v1"], params={"dim": 3})
    assert p.returncode == 2 and "'dim'" in p.stderr


def test_lunar_lander_without_box2d_is_a_clear_error(tmp_path):
    # Hide the installed Box2D behind a package that fails to import, as on a Python without it.
    (tmp_path / "Box2D").mkdir()
    (tmp_path / "Box2D" / "__init__.py").write_text("raise ImportError('No module named Box2D (test stub)')\n")
    p = run_script(["--method", "cma_es", "--env", "LunarLander-v3"],
                   env_extra={"PYTHONPATH": str(tmp_path)})
    assert p.returncode == 2 and p.stdout == ""
    assert "LunarLander-v3 needs Box2D" in p.stderr
    assert ("pip install -r requirements.txt" in p.stderr if envs.box2d_has_wheels()
            else "pip install swig" in p.stderr), p.stderr


def test_environment_alias_and_case_insensitive_env(tmp_path):
    p = run_script(["--method", "random_search", "--environment", "SPHERE", "--max-evals", 100], out_dir=tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "result.json").read_text())["env"] == "sphere"


def test_output_files_in_gaia_output_dir(tmp_path):
    out = tmp_path / "job-42"
    p = run_script(["--method", "cma_es", "--max-evals", 300, "--workers", 2, "--seed", 5,
                    "--results-dir", tmp_path / "ignored"], out_dir=out,
                   params={"pop_size": 12, "hidden": [8, 8], "stop_when_solved": False},
                   env_extra={"GAIA_JOB_ID": "42"})
    assert p.returncode == 0, p.stderr
    assert not (tmp_path / "ignored").exists()
    result = json.loads((out / "result.json").read_text())
    final = final_of(p.stdout)
    assert result["status"] == "done" and result["job_id"] == "42" and result["seed"] == 5
    assert result["method"] == "cma_es" and result["env"] == "CartPole-v1" and result["workers"] == 2
    assert result["params"]["pop_size"] == 12 and result["params"]["hidden"] == [8, 8]
    assert set(result["versions"]) >= {"numpy", "gymnasium", "cma", "python"}
    assert result["evals"] == final["evals"] == 300 and result["final"] == final
    assert result["solved"] == final["solved"] and final["episodes"] == 20 and final["threshold"] == 475.0
    assert isinstance(result["wall_time_s"], float)
    curve = (out / "curve.csv").read_text().splitlines()
    assert curve[0] == "generation,evals,best,best_ever,mean,sigma,elapsed"
    assert len(curve) == 1 + len(gen_lines(p.stdout)) == 1 + 25
    params = np.load(out / "best_params.npy")
    sizes = result["policy"]["layer_sizes"]
    assert sizes == [4, 8, 8, 2] and params.shape == (result["n_params"],) == (4 * 8 + 8 + 8 * 8 + 8 + 8 * 2 + 2,)


def test_default_results_dir(tmp_path):
    import shutil

    target = EXPERIMENTS / "results" / "random_search-sphere-123"
    shutil.rmtree(target, ignore_errors=True)
    try:
        p = run_script(["--method", "random_search", "--env", "sphere", "--max-evals", 100, "--seed", 123])
        assert p.returncode == 0, p.stderr
        assert (target / "result.json").exists() and (target / "curve.csv").exists()
    finally:
        shutil.rmtree(target, ignore_errors=True)
        try:
            target.parent.rmdir()  # only if empty
        except OSError:
            pass


DET_PARAMS = {"stop_when_solved": False, "hidden": [8], "max_episode_steps": 100, "eval_episodes": 3}


def test_same_seed_same_curve(tmp_path):
    args = ["--method", "cma_es", "--max-evals", 400, "--seed", 11]
    a = run_script(args + ["--workers", 2], params=DET_PARAMS, out_dir=tmp_path / "a")
    b = run_script(args + ["--workers", 2], params=DET_PARAMS, out_dir=tmp_path / "b")
    c = run_script(args + ["--workers", 1], params=DET_PARAMS, out_dir=tmp_path / "c")
    d = run_script(["--method", "cma_es", "--max-evals", 400, "--seed", 12, "--workers", 2], params=DET_PARAMS,
                   out_dir=tmp_path / "d")
    for p in (a, b, c, d):
        assert p.returncode == 0, p.stderr
    la, lb, lc, ld = (strip_time(gen_lines(p.stdout)) for p in (a, b, c, d))
    assert len(la) >= 10
    assert la == lb  # same seed, same curve
    assert la == lc  # and the number of workers does not change it
    assert la != ld  # another seed, another curve
    fa, fb = final_of(a.stdout), final_of(b.stdout)
    assert {k: v for k, v in fa.items() if k != "wall_time_s"} == {k: v for k, v in fb.items() if k != "wall_time_s"}
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "best_params.npy"), np.load(tmp_path / "b" / "best_params.npy"))


@pytest.mark.parametrize("method, pop", [("openai_es", 20), ("island_model", 8), ("random_search", 20)])
def test_same_seed_same_curve_other_methods(method, pop, tmp_path):
    args = ["--method", method, "--max-evals", 300, "--seed", 11, "--workers", 2]
    params = dict(DET_PARAMS, pop_size=pop)
    a = run_script(args, params=params, out_dir=tmp_path / "a")
    b = run_script(args, params=params, out_dir=tmp_path / "b")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    la, lb = strip_time(gen_lines(a.stdout)), strip_time(gen_lines(b.stdout))
    assert len(la) >= 3 and la == lb


def _procs_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains marker."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmd and state != "Z":
            out.append(int(entry))
    return out


def _assert_no_leftovers(marker: str) -> None:
    deadline = time.monotonic() + 3.0  # workers' orphan watchdog polls every 0.5 s
    while _procs_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _procs_with(marker) == []


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and process groups")
def test_sigterm_stops_pool_and_exits(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    env["GAIA_OUTPUT_DIR"] = str(tmp_path)
    env["GAIA_JOB_PARAMS"] = json.dumps({"stop_when_solved": False, "backend": "scalar"})  # busy pool
    marker = str(tmp_path / "marker-group")
    proc = subprocess.Popen([sys.executable, str(EXPERIMENTS / "run_all.py"), "--method", "cma_es",
                             "--max-evals", "10000000", "--workers", "2", "--results-dir", marker],
                            cwd=EXPERIMENTS, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in proc.stdout:  # wait until it is evaluating generations
            if line.startswith("Gen    3"):
                break
        workers = _children(proc.pid)
        assert len(workers) == 2
        os.killpg(proc.pid, signal.SIGTERM)  # what the GAIA worker does on cancel
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 143
    _assert_no_leftovers(marker)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "terminated" and result["evals"] > 0
    assert (tmp_path / "curve.csv").read_text().count("\n") >= 4


@pytest.mark.skipif(sys.platform != "linux", reason="uses process signals")
def test_sigterm_to_main_process_only(tmp_path):
    """SIGTERM to run_all.py alone (not the group) also ends the pool's processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    env["GAIA_OUTPUT_DIR"] = str(tmp_path)
    env["GAIA_JOB_PARAMS"] = json.dumps({"stop_when_solved": False, "backend": "scalar"})  # busy pool
    marker = str(tmp_path / "marker-main")
    proc = subprocess.Popen([sys.executable, str(EXPERIMENTS / "run_all.py"), "--method", "openai_es",
                             "--max-evals", "10000000", "--workers", "2", "--results-dir", marker],
                            cwd=EXPERIMENTS, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        for line in proc.stdout:
            if line.startswith("Gen    2"):
                break
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 143
    assert len(workers) == 2
    _assert_no_leftovers(marker)


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc")
def test_reader_going_away_does_not_hang(tmp_path):
    """stdout closed early (e.g. `run_all.py ... | head -3`): exit promptly, leave no process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    env["GAIA_OUTPUT_DIR"] = str(tmp_path)
    env["GAIA_JOB_PARAMS"] = json.dumps({"stop_when_solved": False, "backend": "scalar"})
    marker = str(tmp_path / "marker-pipe")
    proc = subprocess.Popen([sys.executable, str(EXPERIMENTS / "run_all.py"), "--method", "cma_es",
                             "--max-evals", "10000000", "--workers", "2", "--results-dir", marker],
                            cwd=EXPERIMENTS, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        for _ in range(3):
            proc.stdout.readline()
        proc.stdout.close()
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 1
    _assert_no_leftovers(marker)
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "crashed"


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc")
def test_dead_pool_worker_is_an_error_not_a_hang(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    env["GAIA_OUTPUT_DIR"] = str(tmp_path)
    env["GAIA_JOB_PARAMS"] = json.dumps({"stop_when_solved": False, "backend": "scalar"})
    marker = str(tmp_path / "marker-dead")
    proc = subprocess.Popen([sys.executable, str(EXPERIMENTS / "run_all.py"), "--method", "cma_es",
                             "--max-evals", "10000000", "--workers", "2", "--results-dir", marker],
                            cwd=EXPERIMENTS, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        for line in proc.stdout:
            if line.startswith("Gen    2"):
                break
        os.kill(_children(proc.pid)[0], signal.SIGKILL)  # e.g. the OOM killer
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1
    assert "evaluation worker process died" in err
    _assert_no_leftovers(marker)
