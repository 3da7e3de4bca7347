"""Handles of a job and a study: what a researcher does with them in a notebook."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union, cast

from . import models
from ._errors import ConfigError, ConnectionFailed, JobFailed
from ._frames import Backend, flatten, from_records

if TYPE_CHECKING:
    from ._client import Client

TERMINAL = ("succeeded", "failed", "timed_out", "cancelled", "lost")
"""Job states after which a job never runs again."""


def _terminal(job: models.Job) -> bool:
    return job["state"] in TERMINAL


def _fraction(job: models.Job) -> float:
    """A job's progress, 0..1: what it reports, else evaluations over its budget."""
    if job["state"] in TERMINAL:
        return 1.0
    p = job.get("progress") or {}
    f = p.get("fraction")
    if f is not None:
        return max(0.0, min(1.0, float(f)))
    evals, budget = p.get("evals"), job["spec"].get("max_evals")
    if evals is not None and budget:
        return max(0.0, min(1.0, float(evals) / float(budget)))
    return 0.0


class _Bar:
    """A progress bar of one job: tqdm's (a widget in Jupyter, a line in a terminal)."""

    def __init__(self, job_id: int) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError as e:
            raise ConfigError("progress=True needs tqdm: pip install 'gaia-farm[progress]'") from e
        self._bar = tqdm(total=1000, desc=f"job {job_id}", unit="‰", leave=True)
        self._at = 0

    def show(self, job: models.Job) -> None:
        at = int(_fraction(job) * 1000)
        if at > self._at:
            self._bar.update(at - self._at)
            self._at = at
        p = job.get("progress") or {}
        post: Dict[str, Any] = {"state": job["state"]}
        if p.get("best_ever") is not None:
            post["best"] = f"{p['best_ever']:.6g}"
        if p.get("generation") is not None:
            post["gen"] = p["generation"]
        self._bar.set_postfix(post, refresh=True)

    def close(self) -> None:
        self._bar.close()


class Job:
    """A job of the farm, by id. ``info`` is the job as last fetched (:meth:`refresh`)."""

    def __init__(self, client: "Client", job_id: int) -> None:
        self.id = job_id
        self._client = client
        self._info: Optional[models.Job] = None

    def __repr__(self) -> str:
        state = self._info["state"] if self._info else "?"
        return f"gaia.Job({self.id}, {state})"

    def refresh(self) -> models.Job:
        """Fetches the job now."""
        self._info = cast(models.Job, self._client.request("GET", f"/api/v1/jobs/{self.id}"))
        return self._info

    @property
    def info(self) -> models.Job:
        """The job as last fetched (fetched on first use)."""
        return self._info if self._info is not None else self.refresh()

    @property
    def state(self) -> models.JobState:
        """The job's state, fetched now."""
        return self.refresh()["state"]

    def cancel(self) -> models.Job:
        """Cancels the job (a running one stops within seconds)."""
        answer = cast(
            models.CancelResponse, self._client.request("POST", f"/api/v1/jobs/{self.id}/cancel")
        )
        self._info = answer["job"]
        return self._info

    def wait(
        self, timeout: Optional[float] = None, *, progress: bool = False, check: bool = False
    ) -> models.Job:
        """Waits until the job has ended and returns it. Follows the server's event stream
        (no polling; it falls back to polling if the stream breaks). ``progress=True`` shows a
        bar (tqdm: a widget in Jupyter); ``check=True`` raises :class:`JobFailed` unless it
        succeeded; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _Bar(self.id) if progress else None

        def left() -> float:
            if deadline is None:
                return 60.0
            rest = deadline - time.monotonic()
            if rest <= 0:
                raise TimeoutError(f"job {self.id} did not end within {timeout} s")
            return min(60.0, rest + 0.1)

        info: Optional[models.Job] = None
        try:
            events = self._client.events(job=self.id, rows=False, read_timeout=left())
            try:
                for ev in events:
                    if ev.kind == "open":
                        info = self.refresh()
                    elif ev.kind == "job":
                        info = cast(models.Job, ev.data)
                    if info is not None:
                        if bar:
                            bar.show(info)
                        if _terminal(info):
                            break
                    left()
            except ConnectionFailed:
                info = None
            finally:
                events.close()
            # The stream broke (a restarting server, a proxy that cuts long answers): poll.
            while info is None or not _terminal(info):
                time.sleep(min(1.0, left()))
                try:
                    info = self.refresh()
                except ConnectionFailed:
                    continue
                if bar:
                    bar.show(info)
        finally:
            if bar:
                bar.close()
        self._info = info
        if check and info["state"] != "succeeded":
            raise JobFailed(self.id, info["state"], info.get("error"))
        return info

    def rows(
        self,
        backend: Backend = "pandas",
        *,
        attempt: Optional[int] = None,
        points: Optional[int] = None,
        x: Optional[str] = None,
        lo: Optional[float] = None,
        hi: Optional[float] = None,
        format: str = "arrow",
    ) -> Any:
        """The job's rows (one generation each) as a DataFrame: ``seq``, ``generation``,
        ``evals``, ``best``, ``best_ever``, ``mean``, ``sigma``, ``elapsed``, then one column
        per further metric. ``backend`` is ``"pandas"``, ``"polars"`` or ``"arrow"``
        (a ``pyarrow.Table``). ``attempt`` defaults to the current one; ``points`` downsamples
        on the server (min and max per bucket); ``x`` with ``lo``/``hi`` keeps a range of
        ``seq``, ``generation`` or ``evals``. The rows come as an Apache Arrow stream
        (``format="json"`` reads the JSON answer instead, much slower)."""
        params = {"attempt": attempt, "points": points, "x": x, "from": lo, "to": hi}
        path = f"/api/v1/jobs/{self.id}/rows"
        if format == "arrow":
            return self._client.frame(path, {**params, "format": "arrow"}, backend)
        if format != "json":
            raise ValueError(f"format={format!r}: use 'arrow' or 'json'")
        answer = cast(models.RowsResponse, self._client.request("GET", path, params=params))
        return from_records(flatten(cast(Any, answer["rows"]), answer["attempt"]), backend)

    def follow(self) -> Iterator[Dict[str, Any]]:
        """The job's rows as they arrive: first those stored, then each new one, until the job
        ends. Each row is a flat dict (``attempt``, ``seq``, ..., one key per metric), from the
        server's event stream; a new attempt's rows come with its number."""
        last: Dict[int, int] = {}

        def stored_since(attempt: int) -> Iterator[Dict[str, Any]]:
            answer = cast(
                models.RowsResponse,
                self._client.request(
                    "GET",
                    f"/api/v1/jobs/{self.id}/rows",
                    params={"attempt": attempt, "x": "seq", "from": last.get(attempt, -1) + 1},
                ),
            )
            yield from fresh(answer["attempt"], cast(Any, answer["rows"]))

        def fresh(attempt: int, rows: List[Dict[str, Any]]) -> Iterator[Dict[str, Any]]:
            for r in flatten(rows, attempt):
                if r["seq"] > last.get(attempt, -1):
                    last[attempt] = r["seq"]
                    yield r

        events = self._client.events(job=self.id, rows=True)
        try:
            for ev in events:
                if ev.kind in ("open", "resync"):
                    info = self.refresh()
                    if info["attempt"] > 0:
                        yield from stored_since(info["attempt"])
                    if _terminal(info):
                        return
                elif ev.kind == "rows":
                    yield from fresh(ev.data["attempt"], ev.data["rows"])
                elif ev.kind == "job":
                    info = cast(models.Job, ev.data)
                    if _terminal(info):
                        # Rows are in before a job ends; collect any this stream skipped.
                        if info["attempt"] > 0:
                            yield from stored_since(info["attempt"])
                        self._info = info
                        return
        finally:
            events.close()

    def logs(self, tail: Optional[int] = None) -> List[models.LogLine]:
        """The job's log lines: all it keeps (up to 10,000), or the last ``tail``."""
        params: Dict[str, Any] = {"tail": tail} if tail else {"limit": 10_000}
        answer = cast(
            models.LogsResponse,
            self._client.request("GET", f"/api/v1/jobs/{self.id}/logs", params=params),
        )
        return answer["lines"]

    def files(self) -> List[models.FileInfo]:
        """The result files the job uploaded."""
        answer = cast(
            models.FileList, self._client.request("GET", f"/api/v1/jobs/{self.id}/files")
        )
        return answer["files"]

    def download(self, name: str, to: Union[str, Path, None] = None) -> Path:
        """Saves a result file (to ``to``, default: its name in the current folder)."""
        target = Path(to) if to is not None else Path(name)
        self._client.download(f"/api/v1/jobs/{self.id}/files/{name}", target)
        return target


class Study:
    """A study (a sweep of jobs), by name."""

    def __init__(self, client: "Client", name: str) -> None:
        self.name = name
        self._client = client

    def __repr__(self) -> str:
        return f"gaia.Study({self.name!r})"

    def report(self) -> models.StudyReport:
        """The study now: progress and ETA, best per method × env, every job."""
        return cast(
            models.StudyReport, self._client.request("GET", f"/api/v1/studies/{self.name}")
        )

    def jobs(self) -> List[Job]:
        """Handles of the study's jobs."""
        return [self._client.job(j["id"]) for j in self.report()["jobs"]]

    def done(self, report: Optional[models.StudyReport] = None) -> bool:
        """Whether every job of the study has ended."""
        states = (report or self.report())["progress"]["states"]
        return all(s in TERMINAL for s, n in states.items() if n)

    def wait(self, timeout: Optional[float] = None, interval: float = 2.0) -> models.StudyReport:
        """Waits until every job has ended; returns the final report."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            report = self.report()
            if self.done(report):
                return report
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"study {self.name} did not end within {timeout} s")
            time.sleep(interval)

    def table(self, report: Optional[models.StudyReport] = None) -> Any:
        """Per method × env (× swept params): jobs, succeeded, and the best-ever score's mean
        and standard deviation over seeds, as a pandas DataFrame."""
        import pandas

        report = report or self.report()
        records = []
        for g in report["groups"]:
            best: Dict[str, Any] = dict(g.get("best") or {})
            record: Dict[str, Any] = {"method": g["method"], "env": g["env"]}
            record.update({f"param_{k}": v for k, v in (g.get("params") or {}).items()})
            record.update(
                {
                    "jobs": g["jobs"],
                    "succeeded": g["succeeded"],
                    "best_mean": best.get("mean"),
                    "best_std": best.get("std"),
                    "seeds": best.get("n"),
                }
            )
            records.append(record)
        return pandas.DataFrame.from_records(records)

    def watch(self, interval: float = 2.0, *, timeout: Optional[float] = None) -> models.StudyReport:
        """Shows the study live until it is done: in Jupyter a table updated in place, in a
        terminal a line of progress and the table whenever they change. Returns the final
        report (``KeyboardInterrupt`` stops watching; the study runs on)."""
        handle = _display_handle()
        deadline = None if timeout is None else time.monotonic() + timeout
        shown = ""
        while True:
            report = self.report()
            p = report["progress"]
            eta = p.get("eta_secs")
            head = (
                f"study {self.name}: {p['fraction'] * 100:.0f}% of {p['jobs']} jobs, "
                + ", ".join(f"{n} {s}" for s, n in sorted(p["states"].items()))
                + (f", ETA {eta:.0f} s" if eta is not None else "")
            )
            table = self.table(report)
            if handle is not None:
                from IPython.display import HTML

                html = HTML(f"<p>{head}</p>" + table.to_html(index=False))  # type: ignore[no-untyped-call]
                handle.update(html)
            else:
                text = head + "\n" + table.to_string(index=False)
                if text != shown:
                    print(text, file=sys.stdout, flush=True)
                    shown = text
            if self.done(report):
                return report
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"study {self.name} did not end within {timeout} s")
            time.sleep(interval)

    def compare(
        self,
        *,
        others: Sequence[str] = (),
        score: Optional[str] = None,
        norm: Optional[Mapping[str, Tuple[float, float]]] = None,
        by_env: bool = False,
        target: Optional[str] = None,
        seeds_needed: Optional[float] = None,
        profile: bool = False,
        curves: bool = False,
        resamples: Optional[int] = None,
        seed: Optional[int] = None,
    ) -> models.Comparison:
        """The study's methods compared (``gaia compare``; docs/COMPARE.md defines every
        number): per method ``iqm``, ``median``, ``mean`` and ``optimality_gap``, each
        ``{"estimate", "low", "high"}`` (95 % percentile stratified bootstrap), the normalised
        per-run ``scores`` by env, and the probability of improvement of each pair.

        ``others``: further studies side by side; ``score``: ``final`` (default),
        ``best_ever`` or ``auc``; ``norm``: ``{env: (low, high)}``, what normalises to 0 and 1;
        ``by_env``: also each env's aggregates; ``target``: ``"solved"``, a normalised level
        (``"0.5"``) or ``"ENV=SCORE"`` items, the evaluations-to-target view;
        ``seeds_needed``: an interval half-width, the seeds each cell needs to reach it."""
        return cast(
            models.Comparison,
            self._client.request(
                "GET",
                f"/api/v1/studies/{self.name}/compare",
                params=_compare_query(
                    others=others,
                    score=score,
                    norm=norm,
                    by="env" if by_env else None,
                    target=target,
                    seeds_needed=seeds_needed,
                    profile="true" if profile else None,
                    curves="true" if curves else None,
                    resamples=resamples,
                    seed=seed,
                ),
            ),
        )

    def scores(
        self,
        *,
        others: Sequence[str] = (),
        score: Optional[str] = None,
        norm: Optional[Mapping[str, Tuple[float, float]]] = None,
    ) -> models.ScoresExport:
        """Every scored run (``scores.json``): ``matrices`` per method, runs × envs, as
        ``rliable`` takes them (``numpy.array(s["matrices"][m], dtype=float)``), and
        ``records``, the long table (``pandas.DataFrame(s["records"])``)."""
        return cast(
            models.ScoresExport,
            self._client.request(
                "GET",
                f"/api/v1/studies/{self.name}/scores.json",
                params=_compare_query(others=others, score=score, norm=norm),
            ),
        )

    def rows(self, backend: Backend = "pandas") -> Any:
        """Every row of every job of the study as one DataFrame: ``study``, ``job``,
        ``method``, ``env``, ``seed``, one ``param_*`` column per swept param, ``attempt``,
        then the row's columns (as :meth:`Job.rows`). Text columns are categoricals."""
        return self._client.frame(f"/api/v1/studies/{self.name}/export.arrow", None, backend)


def _compare_query(
    *, others: Sequence[str], norm: Optional[Mapping[str, Tuple[float, float]]], **rest: Any
) -> Dict[str, Any]:
    """A comparison's query as the server reads it (``with``, ``norm`` as ``ENV=LOW:HIGH``
    items, the rest as given; None left out)."""
    q: Dict[str, Any] = {k: v for k, v in rest.items() if v is not None}
    if others:
        q["with"] = ",".join(others)
    if norm:
        q["norm"] = ",".join(f"{env}={lo}:{hi}" for env, (lo, hi) in norm.items())
    return q


def _display_handle() -> Any:
    """An IPython display to update in place when running in a notebook, else None."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return None
    try:
        from IPython import get_ipython
        from IPython.display import display

        ip = get_ipython()
        if ip is None or type(ip).__name__ != "ZMQInteractiveShell":
            return None
        return display("", display_id=True)  # type: ignore[no-untyped-call]
    except Exception:  # a broken IPython is no reason to fail watching
        return None
