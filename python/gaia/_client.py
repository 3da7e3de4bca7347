"""The client: one server, one token, every route a researcher uses."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Union,
    cast,
)

import httpx

from . import _sse, models
from ._config import resolve
from ._errors import ApiError, ConfigError, ConnectionFailed, GaiaError, api_error
from ._frames import Backend, from_arrow, pandas_from_batches

if TYPE_CHECKING:
    import pyarrow

    from ._handles import Job, Study

__version__ = "0.1.0"

ARROW_STREAM = "application/vnd.apache.arrow.stream"
"""The media type of the server's Arrow answers."""

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class StreamEvent:
    """One event of the server's live stream: ``kind`` is ``event`` (a stored activity-log
    entry, with an ``id``), ``rows``, ``logs``, ``job``, ``worker`` or ``resync``; ``data`` is
    its JSON (see ``models.RowsEvent``, ``models.Job``, ...)."""

    kind: str
    data: Any
    id: Optional[int] = None


class Client:
    """A client of one GAIA server.

    ``server`` defaults to ``GAIA_SERVER``, then ``http://127.0.0.1:7434``; ``token`` to
    ``GAIA_TOKEN``, then the admin token in ``<data_dir>/admin.token`` (``data_dir`` defaults to
    ``GAIA_DATA_DIR``, then ``./gaia-data``) — the lookup of the ``gaia`` command line. Use it as
    a context manager, or call :meth:`close`, to release its connections.
    """

    def __init__(
        self,
        server: Optional[str] = None,
        token: Optional[str] = None,
        *,
        data_dir: Optional[PathLike] = None,
        timeout: float = 60.0,
    ) -> None:
        self.server, token = resolve(server, token, data_dir)
        self._http = httpx.Client(
            base_url=self.server,
            headers={
                "authorization": f"Bearer {token}",
                "x-gaia-protocol": str(models.PROTOCOL_VERSION),
                "user-agent": f"gaia-python/{__version__}",
            },
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"gaia.Client({self.server!r})"

    def close(self) -> None:
        """Closes the client's connections."""
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing ------------------------------------------------------------------------

    def _fail(self, r: httpx.Response, method: str, path: str) -> ApiError:
        try:
            message = str(json.loads(r.read())["error"])
        except (ValueError, KeyError, TypeError):
            message = r.text.strip() or r.reason_phrase
        return api_error(r.status_code, message, method, path)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Optional[Mapping[str, Any]] = None,
    ) -> Any:
        """Calls a route and returns its JSON answer; an error answer raises the
        :class:`ApiError` subclass of its status, with the server's message."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            r = self._http.request(method, path, json=json_body, params=clean)
        except httpx.TransportError as e:
            raise ConnectionFailed(self.server, str(e) or type(e).__name__) from e
        if r.status_code >= 400:
            raise self._fail(r, method, path)
        return r.json()

    def _stream_lines(
        self, path: str, params: Mapping[str, Any], read_timeout: float
    ) -> Generator[str, None, None]:
        """The lines of a streamed answer (server-sent events); an empty line `""` comes first,
        once the answer has started (the server has subscribed)."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=read_timeout)
        try:
            with self._http.stream(
                "GET",
                path,
                params={k: v for k, v in params.items() if v is not None},
                headers={"accept": "text/event-stream"},
                timeout=timeout,
            ) as r:
                if r.status_code >= 400:
                    raise self._fail(r, "GET", path)
                yield ""
                yield from r.iter_lines()
        except httpx.TransportError as e:
            raise ConnectionFailed(self.server, str(e) or type(e).__name__) from e

    def arrow(self, path: str, params: Optional[Mapping[str, Any]] = None) -> "pyarrow.Table":
        """Reads an Apache Arrow answer into a ``pyarrow.Table``, batch by batch as it
        arrives (no copy of the whole answer is held beside the table)."""
        return self.frame(path, params, "arrow")

    def frame(
        self, path: str, params: Optional[Mapping[str, Any]], backend: "Backend"
    ) -> Any:
        """Reads an Apache Arrow answer into ``backend``'s frame. For pandas, when the server
        says how many rows are coming (``x-gaia-rows``), each batch is copied into columns
        sized for all of them as it arrives and then dropped, so memory holds the frame and one
        batch rather than the whole table beside the frame."""
        pa = _pyarrow()
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            with self._http.stream(
                "GET", path, params=clean, headers={"accept": ARROW_STREAM}
            ) as r:
                if r.status_code >= 400:
                    raise self._fail(r, "GET", path)
                kind = r.headers.get("content-type", "")
                if not kind.startswith(ARROW_STREAM):
                    raise GaiaError(f"GET {path} answered {kind!r}, not an Arrow stream")
                reader = pa.ipc.open_stream(_ResponseReader(r.iter_raw()))
                rows = r.headers.get("x-gaia-rows")
                if backend == "pandas" and rows is not None and rows.isdigit():
                    frame = pandas_from_batches(reader, int(rows))
                    if frame is not None:
                        return frame
                return from_arrow(reader.read_all(), backend)
        except httpx.TransportError as e:
            raise ConnectionFailed(self.server, str(e) or type(e).__name__) from e

    def download(self, path: str, target: PathLike) -> int:
        """Saves a download to ``target`` (written to ``<target>.part``, then renamed, so a cut
        download leaves no file); returns its size."""
        final = os.fspath(target)
        part = final + ".part"
        size = 0
        try:
            with self._http.stream("GET", path) as r:
                if r.status_code >= 400:
                    raise self._fail(r, "GET", path)
                with open(part, "wb") as f:
                    for chunk in r.iter_bytes():
                        f.write(chunk)
                        size += len(chunk)
            os.replace(part, final)
        except httpx.TransportError as e:
            raise ConnectionFailed(self.server, str(e) or type(e).__name__) from e
        finally:
            if os.path.exists(part):
                os.remove(part)
        return size

    # ---- the farm ------------------------------------------------------------------------

    def status(self) -> models.StatusResponse:
        """Versions, jobs per state, workers online."""
        return cast(models.StatusResponse, self.request("GET", "/api/v1/status"))

    def whoami(self) -> models.WhoAmI:
        """The token's scope and name."""
        return cast(models.WhoAmI, self.request("GET", "/api/v1/whoami"))

    def openapi(self) -> Dict[str, Any]:
        """The server's OpenAPI 3.1 document."""
        return cast(Dict[str, Any], self.request("GET", "/api/v1/openapi.json"))

    def workers(self) -> List[models.Worker]:
        """The registered workers."""
        return cast(models.WorkerList, self.request("GET", "/api/v1/workers"))["workers"]

    def summary(self, study: Optional[str] = None) -> models.Summary:
        """Jobs per state and best scores per environment × method (of one study)."""
        return cast(models.Summary, self.request("GET", "/api/v1/summary", params={"study": study}))

    # ---- jobs ----------------------------------------------------------------------------

    def submit(
        self,
        method: Optional[str] = None,
        env: Optional[str] = None,
        max_evals: Optional[int] = None,
        seed: Optional[int] = None,
        *,
        params: Optional[Mapping[str, Any]] = None,
        **spec: Any,
    ) -> "Job":
        """Submits one job and returns its handle. The arguments are a ``JobSpec``'s fields
        (``kind``, ``name``, ``priority``, ``requirements``, ``max_attempts``,
        ``timeout_secs``, ``study``, ``argv``, ``input``); an experiment needs a method."""
        body = _spec(method=method, env=env, max_evals=max_evals, seed=seed, params=params, **spec)
        answer = cast(models.SubmitResponse, self.request("POST", "/api/v1/jobs", json_body=body))
        return self.job(answer["id"])

    def submit_many(self, specs: Iterable[models.JobSpec]) -> List["Job"]:
        """Submits several jobs at once (all stored, or none); handles in order."""
        body = {"jobs": list(specs)}
        answer = cast(
            models.SubmitBatchResponse,
            self.request("POST", "/api/v1/jobs/batch", json_body=body),
        )
        return [self.job(i) for i in answer["ids"]]

    def job(self, job_id: int) -> "Job":
        """The handle of a job (nothing is fetched until asked)."""
        from ._handles import Job

        return Job(self, int(job_id))

    def jobs(
        self,
        state: Optional[models.JobState] = None,
        study: Optional[str] = None,
        limit: Optional[int] = None,
        mine: bool = False,
        owner: Optional[str] = None,
    ) -> List[models.Job]:
        """Jobs, newest first: every matching one, or the newest ``limit``. ``mine``: only the
        jobs of this token's user; ``owner``: only that user's."""
        out: List[models.Job] = []
        before: Optional[int] = None
        while limit is None or len(out) < limit:
            page_size = 1000 if limit is None else min(1000, limit - len(out))
            page = cast(
                models.JobList,
                self.request(
                    "GET",
                    "/api/v1/jobs",
                    params={
                        "state": state,
                        "study": study,
                        "limit": page_size,
                        "before": before,
                        "mine": 1 if mine else None,
                        "owner": owner,
                    },
                ),
            )
            out.extend(page["jobs"])
            before = page.get("next_before")
            if before is None or not page["jobs"]:
                break
        return out

    # ---- studies -------------------------------------------------------------------------

    def submit_study(
        self,
        name: str,
        *,
        method: Union[str, Sequence[str]],
        env: Union[str, Sequence[str], None] = None,
        seeds: Union[int, Iterable[int], str, None] = None,
        params: Optional[Mapping[str, Any]] = None,
        again: bool = False,
        confirm_large: bool = False,
        dry_run: bool = False,
        **template: Any,
    ) -> "Study":
        """Submits a study: one job per method × env × seed × swept param. ``method`` and
        ``env`` are a name or a list (or the CLI's text, ``"a,b"``); ``seeds`` an int, a list,
        a ``range`` or text (``"1..5"``); a param whose value is a list is swept, others are
        fixed. The rest (``max_evals``, ``priority``, ...) is every job's template."""
        fixed: Dict[str, Any] = {}
        swept: List[models.ParamInput] = []
        for key, value in (params or {}).items():
            if isinstance(value, (list, tuple, range)):
                swept.append({"key": key, "values": list(value)})
            else:
                fixed[key] = value
        sweep: Dict[str, Any] = {"methods": _axis(method)}
        if env is not None:
            sweep["envs"] = _axis(env)
        if seeds is not None:
            sweep["seeds"] = [seeds] if isinstance(seeds, int) else (
                seeds if isinstance(seeds, str) else list(seeds)
            )
        if swept:
            sweep["params"] = swept
        body = {
            "name": name,
            "template": _spec(params=fixed or None, **template),
            "sweep": sweep,
            "again": again,
            "confirm_large": confirm_large,
            "dry_run": dry_run,
        }
        self.request("POST", "/api/v1/studies", json_body=body)
        return self.study(name)

    def study(self, name: str) -> "Study":
        """The handle of a study."""
        from ._handles import Study

        return Study(self, name)

    def studies(self) -> List[models.StudySummary]:
        """Every study with its progress, newest first."""
        return cast(models.StudyList, self.request("GET", "/api/v1/studies"))["studies"]

    # ---- the live stream -----------------------------------------------------------------

    def events(
        self,
        *,
        job: Optional[int] = None,
        rows: bool = True,
        logs: bool = False,
        after: Optional[int] = None,
        read_timeout: float = 60.0,
    ) -> Generator[StreamEvent, None, None]:
        """The server's live event stream (``GET /api/v1/events``, server-sent events): the
        stored events after ``after``, then everything as it happens. ``job`` keeps one job's
        updates.

        The first event is ``open``, sent once the server has subscribed this stream: what a
        caller reads after it cannot miss an update. ``comment`` events are the server's
        keep-alives (every 15 s). Runs until the caller stops iterating (close the generator to
        disconnect); ``ConnectionFailed`` when nothing, not even a keep-alive, arrived for
        ``read_timeout`` seconds."""
        params = {
            "stream": "1",
            "job": job,
            "rows": None if rows else "0",
            "logs": "1" if logs else "0",
            "after": after,
        }
        lines = self._stream_lines("/api/v1/events", params, read_timeout)
        try:
            # The first line marks the answer's start; it ends no event (no data before it).
            if next(lines, None) is None:
                return
            yield StreamEvent("open", None)
            for e in _sse.parse(lines):
                if e.kind == "comment":
                    yield StreamEvent("comment", e.data)
                    continue
                data = json.loads(e.data) if e.data else None
                yield StreamEvent(e.kind, data, int(e.id) if e.id else None)
        finally:
            lines.close()


class _ResponseReader:
    """A read-only file over an answer's chunks, for pyarrow's stream reader: each ``read``
    hands over what arrived without joining more than it must."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._head = memoryview(b"")
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            rest = [bytes(self._head), *self._chunks]
            self._head = memoryview(b"")
            return b"".join(rest)
        if len(self._head) >= size:
            out = bytes(self._head[:size])
            self._head = self._head[size:]
            return out
        parts = [bytes(self._head)]
        have = len(self._head)
        self._head = memoryview(b"")
        for chunk in self._chunks:
            if have + len(chunk) >= size:
                need = size - have
                parts.append(chunk[:need])
                self._head = memoryview(chunk)[need:]
                have = size
                break
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
    except ImportError as e:
        raise ConfigError(
            "reading rows needs pyarrow: pip install 'gaia-farm[pandas]' (or [polars])"
        ) from e
    return pyarrow


def _axis(value: Union[str, Sequence[str]]) -> Union[str, List[str]]:
    return value if isinstance(value, str) else list(value)


_INTEGER_FIELDS = ("max_evals", "seed", "priority", "max_attempts", "timeout_secs")


def _spec(**fields: Any) -> Dict[str, Any]:
    """A JobSpec from keyword arguments, absent ones left out (the server's defaults apply).
    A whole float for an integer field (``max_evals=1e5``) is sent as the integer it is."""
    spec = {k: v for k, v in fields.items() if v is not None}
    for k in _INTEGER_FIELDS:
        v = spec.get(k)
        if isinstance(v, float) and v.is_integer():
            spec[k] = int(v)
    if "params" in spec:
        spec["params"] = dict(spec["params"])
    return spec

