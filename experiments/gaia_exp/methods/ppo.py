"""PPO (stable-baselines3): the gradient baseline, on the same axis as the evolution strategies.

Proximal Policy Optimization (Schulman, Wolski, Dhariwal, Radford & Klimov, "Proximal policy
optimization algorithms", arXiv:1707.06347, 2017) as implemented by stable-baselines3 (Raffin et
al., "Stable-Baselines3: reliable reinforcement learning implementations", JMLR 22, 2021): an
actor-critic with separate tanh MLPs of the run's ``hidden`` sizes for the policy and the value
function, ``n_envs`` environments stepped in this process, an update after every ``n_steps``
steps of each.

How it reports, so that it compares with the other methods:

- A *generation* is one rollout (``n_envs`` x ``n_steps`` steps) and the update after it. Its
  fitness is the mean return of the training episodes that ended during the rollout (stochastic
  actions; an episode that began in the previous rollout is counted where it ends); Best and
  Mean of the Gen line are that one value, and no line is printed for a rollout in which no
  episode ended. The candidate behind it, kept as best-ever, is the policy that collected the
  rollout, as a flat MLP vector: the actor's layers in GAIA's layout, whose deterministic
  action (argmax, or the Gaussian mean clipped to the action bounds: policy kind
  ``mlp_clip``) is what stable-baselines3's ``predict(deterministic=True)`` does. Validation and
  the final test run that vector through the same evaluator as every other method.
- **Evals count environment episodes in the unit of the other methods**: one eval is
  ``eval_episodes`` training episodes (5 by default), because that is what one candidate
  evaluation of an evolution strategy costs; ``Evals`` is episodes // eval_episodes, the budget is
  ``max_evals`` x ``eval_episodes`` episodes (never exceeded: training stops at that episode), and
  the Gen line's ``Episodes`` field gives the raw count.
- σ in the Gen line: the mean standard deviation of the Gaussian policy (continuous actions),
  nan for discrete actions.
- On an analytic objective PPO solves a one-step continuous bandit: the observation is a constant,
  the action a is a point offset from the start point (x = x0 + a, bounds +-10 x0_range), the
  reward -f(x). Each episode is then the evaluation of one point: they are recorded as the
  generation's candidates, as an ES's samples are.

The extra: stable-baselines3 needs PyTorch, which is large (README.md, "ppo", has the measured
download and install cost), so it is not in requirements.txt. ``requirements-ppo.txt`` lists it.
In a GAIA worker's own virtualenv (the one it builds from requirements.txt, marked by its stamp
file) the first ppo job installs it there itself (under a lock, with a status line while it
does); anywhere else a missing extra is an error naming the command to run (exit 2).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..envs import EnvError
from ..params import Param

POLICY = "mlp_clip"
EXTRA_METRICS = ("episodes",)
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements-ppo.txt"
WORKER_VENV_STAMP = "gaia-requirements.sha256"  # written by the GAIA worker into the venv it builds

PARAMS = (
    Param("n_envs", 8, "int", "environments stepped side by side", 1),
    Param("n_steps", 256, "int", "steps per environment per rollout (one rollout + update = one generation)", 2),
    Param("batch_size", 64, "int", "minibatch size of the PPO update", 2),
    Param("n_epochs", 10, "int", "passes over each rollout in the update", 1),
    Param("learning_rate", 3e-4, "float", "Adam step size", 0),
    Param("gamma", 0.99, "float", "discount factor", 0),
    Param("gae_lambda", 0.95, "float", "GAE lambda", 0),
    Param("clip_range", 0.2, "float", "PPO's clipping of the probability ratio", 0),
    Param("ent_coef", 0.0, "float", "entropy bonus coefficient", 0),
)


def _have_sb3() -> bool:
    try:
        import stable_baselines3  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def in_worker_venv() -> bool:
    """True in the virtualenv a GAIA worker built (and owns) for the experiments."""
    return sys.prefix != sys.base_prefix and (Path(sys.prefix) / WORKER_VENV_STAMP).exists()


def install_command() -> list[str]:
    return [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(REQUIREMENTS)]


def check(info, params) -> None:
    """Make sure stable-baselines3 is importable: install it in a worker's venv, else explain."""
    if _have_sb3():
        return
    if not in_worker_venv():
        raise EnvError("--method ppo needs stable-baselines3 and PyTorch, which are not installed in this Python; "
                       f"install them with: {sys.executable} -m pip install -r {REQUIREMENTS} "
                       "(PyTorch is large: see experiments/README.md, 'ppo')")
    from ..lines import gaia_line

    print(gaia_line({"status": "installing the ppo extra (stable-baselines3 + PyTorch, once per worker) "
                               "into the worker's Python environment"}), flush=True)
    import fcntl

    with open(Path(sys.prefix) / "gaia-ppo-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another slot of this worker may be installing it
        if not _have_sb3():
            p = subprocess.run(install_command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if p.returncode != 0:
                tail = "\n".join(p.stderr.strip().splitlines()[-10:])
                raise EnvError(f"installing {REQUIREMENTS.name} failed ({' '.join(install_command())}):\n{tail}")
    import importlib

    importlib.invalidate_caches()
    if not _have_sb3():
        raise EnvError(f"stable-baselines3 is still not importable after installing {REQUIREMENTS.name}")


def versions() -> dict:
    try:
        import stable_baselines3
        import torch
    except ImportError:
        return {}
    return {"stable_baselines3": stable_baselines3.__version__, "torch": torch.__version__}


def actor_vector(policy) -> np.ndarray:
    """The actor of an sb3 ActorCriticPolicy as a flat GAIA MLP vector (per layer W (in x out,
    row-major) then b): policy_net's Linear layers, then action_net."""
    import torch

    linears = [m for m in policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
    linears.append(policy.action_net)
    parts = []
    with torch.no_grad():
        for lin in linears:
            parts.append(lin.weight.detach().cpu().numpy().astype(np.float64).T.ravel())
            parts.append(lin.bias.detach().cpu().numpy().astype(np.float64).ravel())
    return np.concatenate(parts)


def _bandit_env(evaluator, x0: np.ndarray, x0_range: float):
    """A one-step continuous bandit over the analytic objective: reward -f(x0 + a)."""
    import gymnasium as gym

    class Bandit(gym.Env):
        def __init__(self):
            self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
            bound = 10.0 * max(x0_range, 1.0)
            self.action_space = gym.spaces.Box(-bound, bound, (x0.size,), np.float32)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros(1, dtype=np.float32), {}

        def step(self, action):
            x = x0 + np.asarray(action, dtype=np.float64)
            r = float(evaluator.returns(x[None, :])[0, 0])
            return np.zeros(1, dtype=np.float32), r, True, False, {}

    return Bandit()


def run(run, params: dict) -> None:
    """Train with stable-baselines3's PPO until the Run's budget of episodes is spent."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from ..run import method_seed

    torch.set_num_threads(1)  # small MLPs: threads cost more than they give, and stay deterministic
    analytic = run.layer_sizes is None
    ev = run.evaluator
    per_eval = 1 if analytic else run.eval_episodes
    budget_episodes = run.max_evals * per_eval
    seed = method_seed(run.seed)
    if analytic:
        x0_range = float(np.max(np.abs(run.x0))) if run.x0.size else 1.0
        env_fns = [lambda: _bandit_env(ev, run.x0, x0_range)] * params["n_envs"]
        net = []
    else:
        cfg = ev.cfg
        max_steps = ev.local.max_steps

        def make():
            import gymnasium as gym

            return gym.wrappers.TimeLimit(cfg.make(gym).unwrapped, max_steps)

        env_fns = [make] * params["n_envs"]
        net = list(run.layer_sizes[1:-1])
    venv = VecMonitor(DummyVecEnv(env_fns))
    venv.seed(seed)
    model = PPO("MlpPolicy", venv, n_steps=params["n_steps"], batch_size=params["batch_size"],
                n_epochs=params["n_epochs"], learning_rate=params["learning_rate"], gamma=params["gamma"],
                gae_lambda=params["gae_lambda"], clip_range=params["clip_range"], ent_coef=params["ent_coef"],
                policy_kwargs={"net_arch": {"pi": net, "vf": net}, "activation_fn": torch.nn.Tanh},
                seed=seed, device="cpu", verbose=0)

    class Report(BaseCallback):
        def __init__(self):
            super().__init__()
            self.episodes = 0  # ended training episodes, all counted
            self.returns: list[float] = []  # this rollout's
            self.points: list[np.ndarray] = []  # analytic: this rollout's points
            self.stop = False

        def _on_step(self) -> bool:
            if self.stop:
                return False
            for i, info in enumerate(self.locals["infos"]):
                ep = info.get("episode")
                if ep is None or self.episodes >= budget_episodes:
                    continue
                self.episodes += 1
                self.returns.append(float(ep["r"]))
                if analytic:
                    self.points.append(run.x0 + np.asarray(self.locals["clipped_actions"][i], dtype=np.float64))
            if self.episodes >= budget_episodes:
                self.stop = True
                return False
            return True

        def _on_rollout_end(self) -> None:
            self.flush()

        def flush(self) -> None:
            if not self.returns:
                return
            evals = self.episodes // per_eval - run.evals
            if analytic:  # the exact -f of each point (the episode return went through float32)
                points = np.array(self.points)
                run.record(points, ev.returns(points)[:, 0], evals)
                sigma = float(torch.exp(model.policy.log_std.detach()).mean())
            else:
                f = float(np.mean(self.returns))
                run.record(actor_vector(model.policy)[None, :], [f], evals)
                log_std = getattr(model.policy, "log_std", None)
                sigma = float(torch.exp(log_std.detach()).mean()) if log_std is not None else math.nan
            self.returns, self.points = [], []
            if run.end_generation(sigma, {"episodes": self.episodes}):
                self.stop = True

    report = Report()
    model.learn(total_timesteps=10**12, callback=report)  # the callback ends it
    report.flush()  # a rollout cut short by the budget
    venv.close()
