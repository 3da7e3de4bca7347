"""The client against a real server and worker: submit, wait, rows (Arrow and JSON), follow,
studies, errors, token lookup."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import gaia
from conftest import REPO, Server, fake


# ---- configuration: the CLI's lookup ------------------------------------------------------


def test_default_server_is_the_cli_default() -> None:
    src = (REPO / "gaia-core/src/client.rs").read_text()
    m = re.search(r'pub const DEFAULT_SERVER: &str = "([^"]+)";', src)
    assert m, "DEFAULT_SERVER not found in gaia-core/src/client.rs"
    assert gaia.DEFAULT_SERVER == m.group(1)
    assert gaia.ADMIN_TOKEN_FILE in (REPO / "gaia-core/src/server/auth.rs").read_text()


def test_token_lookup_follows_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GAIA_SERVER", "GAIA_TOKEN", "GAIA_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(gaia.ConfigError, match="no token.*GAIA_TOKEN"):
        gaia.resolve()
    # ./gaia-data/admin.token, as a server started here keeps it.
    (tmp_path / "gaia-data").mkdir()
    (tmp_path / "gaia-data" / "admin.token").write_text("from-the-data-dir\n")
    assert gaia.resolve() == ("http://127.0.0.1:7434", "from-the-data-dir")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "admin.token").write_text("other-dir")
    monkeypatch.setenv("GAIA_DATA_DIR", str(other))
    assert gaia.resolve()[1] == "other-dir"
    monkeypatch.setenv("GAIA_TOKEN", "from-env")
    monkeypatch.setenv("GAIA_SERVER", "https://farm.example:8443/")
    assert gaia.resolve() == ("https://farm.example:8443", "from-env")
    assert gaia.resolve(token="given")[1] == "given"
    with pytest.raises(gaia.ConfigError, match="http"):
        gaia.resolve(server="farm:7434")


def test_a_client_finds_a_local_servers_admin_token(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    (server.data_dir / "admin.token").write_text(server.token)
    monkeypatch.delenv("GAIA_TOKEN", raising=False)
    monkeypatch.setenv("GAIA_SERVER", server.url)
    monkeypatch.setenv("GAIA_DATA_DIR", str(server.data_dir))
    with gaia.Client() as farm:
        assert farm.whoami()["name"] == "admin"


# ---- errors carry the server's message and status -----------------------------------------


def test_errors_are_exceptions_with_the_servers_message(server: Server, farm: gaia.Client) -> None:
    with pytest.raises(gaia.NotFound) as e:
        farm.job(999_999).refresh()
    assert e.value.status == 404 and "job 999999 not found" in e.value.message
    with pytest.raises(gaia.BadRequest, match="max_evals must be positive"):
        farm.submit(method="cma_es", max_evals=0)
    with pytest.raises(gaia.BadRequest, match="unknown field `colour`"):
        farm.submit(method="cma_es", colour="blue")
    with gaia.Client(server.url, "not-a-token") as stranger:
        with pytest.raises(gaia.Unauthorized, match="invalid token"):
            stranger.status()
    read = farm.request("POST", "/api/v1/tokens", json_body={"name": "py-reader", "scope": "read"})
    with gaia.Client(server.url, read["token"]) as reader:
        assert reader.status()["protocol"] == gaia.models.PROTOCOL_VERSION
        with pytest.raises(gaia.Forbidden, match="needs a submit token") as f:
            reader.submit(method="cma_es")
        assert f.value.status == 403
    with gaia.Client("http://127.0.0.1:9", "x") as nowhere:
        with pytest.raises(gaia.ConnectionFailed, match="127.0.0.1:9"):
            nowhere.status()


# ---- jobs ---------------------------------------------------------------------------------


def test_submit_wait_and_rows(farm: gaia.Client, worker: object, capsys: pytest.CaptureFixture[str]) -> None:
    job = farm.submit(method="cma_es", env="CartPole-v1", max_evals=1000, seed=3, params=fake(gens=40, delay=0.01))
    info = job.wait(timeout=60, progress=True, check=True)
    assert info["state"] == "succeeded" and job.info is info
    assert "job" in capsys.readouterr().err, "tqdm draws its bar on stderr"

    df = job.rows()
    assert isinstance(df, pd.DataFrame) and len(df) == 40
    assert list(df.columns[:8]) == ["seq", "generation", "evals", "best", "best_ever", "mean", "sigma", "elapsed"]
    assert df["seq"].tolist() == list(range(40))
    assert df["generation"].tolist() == list(range(1, 41))
    assert df["best"].iloc[-1] == pytest.approx(-100.0 + 40 * 1.5 + 3)

    # The same rows through every backend and through JSON.
    assert job.rows(backend="polars").equals(pl.from_pandas(df))
    table = job.rows(backend="arrow")
    assert isinstance(table, pa.Table)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert meta == {"gaia.job": str(job.id), "gaia.attempt": "1", "gaia.downsampled": "false"}
    via_json = job.rows(format="json")
    pd.testing.assert_frame_equal(
        via_json[df.columns.tolist()].astype(df.dtypes.to_dict()), df, check_dtype=False
    )
    # Downsampled and ranged, on the server.
    assert len(job.rows(points=10)) <= 10
    assert job.rows(x="generation", lo=10, hi=19)["generation"].tolist() == list(range(10, 20))

    assert [f["name"] for f in job.files()] == ["curve.csv", "result.json"]
    assert any("fake experiment" in line["text"] for line in job.logs())


def test_wait_raises_on_failure_when_asked(farm: gaia.Client, worker: object) -> None:
    job = farm.submit(method="cma_es", max_evals=100, params=fake(mode="fail"))
    with pytest.raises(gaia.JobFailed, match=f"(?s)job {job.id} ended failed.*ValueError: boom"):
        job.wait(timeout=60, check=True)
    slow = farm.submit(method="cma_es", max_evals=100, params=fake(mode="silent", delay=30))
    with pytest.raises(TimeoutError):
        slow.wait(timeout=0.5)
    assert slow.cancel()["cancel_requested"] or slow.state == "cancelled"
    assert slow.wait(timeout=30)["state"] == "cancelled"


def test_follow_yields_every_row_once_as_it_arrives(farm: gaia.Client, worker: object) -> None:
    job = farm.submit(method="openai_es", max_evals=1000, seed=1, params=fake(gens=30, delay=0.03))
    seen = list(job.follow())
    assert [r["seq"] for r in seen] == list(range(30))
    assert all(r["attempt"] == 1 for r in seen)
    assert seen[-1]["generation"] == 30 and seen[-1]["best"] == pytest.approx(-100 + 30 * 1.5 + 1)
    # A job that has ended: its stored rows, then the end.
    assert [r["seq"] for r in job.follow()] == list(range(30))


def test_rows_of_a_long_job_stream_in_batches(farm: gaia.Client, worker: object) -> None:
    # More rows than one Arrow record batch (65,536) holds.
    job = farm.submit(method="cma_es", max_evals=100, params=fake(gens=70_000, mode="spool"))
    job.wait(timeout=120, check=True)
    table = job.rows(backend="arrow")
    assert table.num_rows == 70_000 and len(table.to_batches()) >= 2
    assert table.column("seq").to_pylist() == list(range(70_000))
    # pandas is filled batch by batch into columns sized from the server's row count; the
    # frame is the one Arrow's own conversion gives.
    import pandas

    pandas.testing.assert_frame_equal(job.rows(), table.to_pandas())


# ---- studies ------------------------------------------------------------------------------


def test_study_watch_rows_and_table(farm: gaia.Client, worker: object, capsys: pytest.CaptureFixture[str]) -> None:
    study = farm.submit_study(
        "py-cc",
        method=["cma_es", "openai_es"],
        env=["CartPole-v1", "Acrobot-v1"],
        seeds=range(1, 3),
        max_evals=1000,
        params={"gens": 6, "lr": [0.1, 0.2]},
    )
    report = study.watch(interval=0.2, timeout=120)
    assert study.done(report) and report["progress"]["jobs"] == 16
    out = capsys.readouterr().out
    assert "study py-cc" in out and "best_mean" in out

    df = study.rows()
    assert len(df) == 16 * 6
    assert set(df["method"].cat.categories) == {"cma_es", "openai_es"}
    assert set(df["env"].unique()) == {"CartPole-v1", "Acrobot-v1"}
    assert sorted(df["param_lr"].unique()) == [0.1, 0.2], "numeric params stay numbers"
    assert df.groupby("job").size().eq(6).all()
    assert study.rows(backend="polars").height == 16 * 6

    table = study.table()
    assert len(table) == 8 and (table["succeeded"] == 2).all()
    assert {j.id for j in study.jobs()} == set(df["job"].unique())
    # The methods compared with their intervals, and the scores they came from.
    c = study.compare(by_env=True, resamples=500)
    assert c["resamples"] == 500 and c["studies"] == ["py-cc"]
    labels = sorted(m["method"] for m in c["methods"])
    assert labels == ["cma_es lr=0.1", "cma_es lr=0.2", "openai_es lr=0.1", "openai_es lr=0.2"]
    for m in c["methods"]:
        iqm = m["iqm"]
        assert iqm is not None and iqm["low"] <= iqm["estimate"] <= iqm["high"], m
        assert {env: len(v) for env, v in m["scores"].items()} == {"CartPole-v1": 2, "Acrobot-v1": 2}
    assert len(c["improvement"]) == 6 and len(c.get("by_env") or []) == 2
    s = study.scores(norm={"CartPole-v1": (0, 500), "Acrobot-v1": (-500, 0)})
    assert len(s["records"]) == 16 and set(s["matrices"]) == set(labels)
    assert [n["source"] for n in s["normalisation"]] == ["override", "override"]
    with pytest.raises(gaia.NotFound):
        farm.study("no-such-study").compare()
    assert all(j["owner"] == "admin" for j in farm.jobs(study="py-cc")), "the admin token's user"
    assert len(farm.jobs(mine=True, limit=5)) == 5
    assert farm.jobs(owner="nobody") == []
    with pytest.raises(gaia.Conflict, match="already"):
        farm.submit_study("py-cc", method=["cma_es", "openai_es"], env=["CartPole-v1", "Acrobot-v1"],
                          seeds=range(1, 3), max_evals=1000, params={"gens": 6, "lr": [0.1, 0.2]})


# ---- the client's types are the server's ---------------------------------------------------


def test_the_served_document_is_the_one_in_docs(farm: gaia.Client) -> None:
    served = farm.openapi()
    kept = json.loads((REPO / "docs/openapi.json").read_text())
    assert served == kept
    assert served["info"]["version"] == gaia.models.OPENAPI_VERSION


def test_models_are_generated_from_the_document() -> None:
    script = REPO / "python/scripts/gen_models.py"
    r = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads((REPO / "docs/openapi.json").read_text())
    for name in doc["components"]["schemas"]:
        assert hasattr(gaia.models, name), name


def test_the_package_is_typed() -> None:
    pkg = Path(gaia.__file__).parent
    assert (pkg / "py.typed").is_file()
    r = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO / "python", capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
