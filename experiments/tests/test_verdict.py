"""Issue 12 item 6: the status, the result and result.json tell one story when training reached
the threshold (validated) but the final test on fresh episodes falls short."""

import json

import numpy as np
import pytest

from conftest import final_of
from gaia_exp import cli, evaluation
from gaia_exp.lines import parse_line
from gaia_exp.run import STREAM_FINAL, derive_seeds, verdict


def statuses(out: str) -> list[str]:
    return [p["json"]["status"] for p in map(parse_line, out.splitlines()) if p["kind"] == "gaia" and "status" in p["json"]]


def run_cartpole(capsys, monkeypatch, tmp_path, final_penalty: float):
    """cma_es on CartPole-v1 (seed 0 reaches 500 and passes validation), with the final test's
    returns lowered by ``final_penalty``: a policy that validation let through and the final test fails."""
    final_seeds = derive_seeds(0, STREAM_FINAL, 0, 20)

    class Marginal(evaluation.GymEvaluator):
        def returns(self, thetas, seeds):
            r = super().returns(thetas, seeds)
            return r - final_penalty if list(seeds) == final_seeds else r

    monkeypatch.setattr(evaluation, "GymEvaluator", Marginal)
    monkeypatch.setenv("GAIA_OUTPUT_DIR", str(tmp_path))
    monkeypatch.delenv("GAIA_JOB_PARAMS", raising=False)
    code = cli.main(["--method", "cma_es", "--max-evals", "20000", "--workers", "1", "--seed", "0"])
    out = capsys.readouterr().out
    assert code == 0
    return out, final_of(out), json.loads((tmp_path / "result.json").read_text())


def test_validated_but_not_confirmed_says_so_everywhere(capsys, monkeypatch, tmp_path):
    out, final, result = run_cartpole(capsys, monkeypatch, tmp_path, final_penalty=100.0)
    st = statuses(out)
    gen = final["validated"]["generation"]
    assert st[1] == (f"reached the threshold at generation {gen}: validation mean 500.0 over 100 episodes, "
                     f"every block of 20 >= 475; final test next")
    expected = (f"not solved: reached the threshold in training at generation {gen} (validated on 100 episodes), "
                f"not confirmed in the final test: mean 400.0 < 475 over 20 episodes")
    assert st[-1] == expected  # the last status: what the dashboard and `gaia show` display
    assert not any(s.startswith("solved") for s in st)
    assert final["solved"] is False and final["stop_reason"] == "not_confirmed"
    assert final["threshold_reached_in_training"] is True and final["verdict"] == expected
    assert final["validated"]["episodes"] == 100 and final["mean"] == pytest.approx(400.0)
    assert result["solved"] is False and result["verdict"] == expected and result["stop_reason"] == "not_confirmed"
    assert result["threshold_reached_in_training"] is True and result["validated"] == final["validated"]


def test_validated_and_confirmed(capsys, monkeypatch, tmp_path):
    out, final, result = run_cartpole(capsys, monkeypatch, tmp_path, final_penalty=0.0)
    gen = final["validated"]["generation"]
    assert statuses(out)[-1] == (f"solved: reached the threshold in training at generation {gen} (validated on "
                                 f"100 episodes) and confirmed in the final test: mean 500.0 >= 475 over 20 episodes")
    assert final["solved"] is True and final["stop_reason"] == "solved" and result["verdict"] == final["verdict"]


@pytest.mark.parametrize("kw, solved, reason, start", [
    (dict(final_mean=480.0, best_ever=470.0, stopped_at_threshold=False, validated=None), True, "budget",
     "solved in the final test: mean 480.0 >= 475 over 20 episodes, after the whole budget"),
    (dict(final_mean=300.0, best_ever=490.0, stopped_at_threshold=False, validated=None), False, "budget",
     "not solved: budget spent (1,000 evals); training reached the threshold (best 490.0) but no policy passed"),
    (dict(final_mean=30.0, best_ever=40.0, stopped_at_threshold=False, validated=None), False, "budget",
     "not solved: budget spent (1,000 evals); best training fitness 40.0 < 475; final test mean 30.0"),
    (dict(final_mean=np.nan, best_ever=-np.inf, stopped_at_threshold=False, validated=None), False, "budget",
     "not solved: budget spent (1,000 evals); best training fitness nan < 475; final test mean nan"),
])
def test_verdict_after_the_whole_budget(kw, solved, reason, start):
    v = verdict(threshold=475.0, episodes=20, generation=12, evals=1000, deterministic=False, **kw)
    assert v["solved"] is solved and v["stop_reason"] == reason and v["verdict"].startswith(start), v


def test_verdict_without_threshold_and_deterministic():
    v = verdict(threshold=None, final_mean=-3.0, episodes=20, best_ever=-1.0, stopped_at_threshold=False,
                validated=None, generation=3, evals=90, deterministic=False)
    assert v == {"solved": False, "stop_reason": "budget", "threshold_reached_in_training": False,
                 "verdict": "finished: budget spent (90 evals); final test mean -3.0 over 20 episodes "
                            "(this env has no threshold)"}
    v = verdict(threshold=-1e-8, final_mean=-1e-9, episodes=None, best_ever=-1e-9, stopped_at_threshold=True,
                validated=None, generation=40, evals=400, deterministic=True)
    assert v["solved"] and v["stop_reason"] == "solved" and v["verdict"].startswith("solved at generation 40")
