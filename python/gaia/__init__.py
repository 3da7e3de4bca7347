"""GAIA's Python client: submit jobs and studies to a GAIA experiment farm, wait for them,
follow their rows as they arrive and read them as DataFrames.

    import gaia
    farm = gaia.Client()          # GAIA_SERVER / GAIA_TOKEN, or the local server's admin token
    job = farm.submit(method="cma_es", env="CartPole-v1", max_evals=20000, seed=3)
    job.wait(progress=True)
    df = job.rows()               # pandas; rows(backend="polars") for polars

The wire types are in :mod:`gaia.models`, generated from the server's OpenAPI document.
"""
from . import models
from ._client import ARROW_STREAM, Client, StreamEvent, __version__
from ._config import ADMIN_TOKEN_FILE, DEFAULT_DATA_DIR, DEFAULT_SERVER, resolve
from ._errors import (
    ApiError,
    BadRequest,
    ConfigError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    GaiaError,
    JobFailed,
    NotFound,
    Unauthorized,
)
from ._handles import TERMINAL, Job, Study

__all__ = [
    "ADMIN_TOKEN_FILE",
    "ARROW_STREAM",
    "ApiError",
    "BadRequest",
    "Client",
    "ConfigError",
    "Conflict",
    "ConnectionFailed",
    "DEFAULT_DATA_DIR",
    "DEFAULT_SERVER",
    "Forbidden",
    "GaiaError",
    "Job",
    "JobFailed",
    "NotFound",
    "StreamEvent",
    "Study",
    "TERMINAL",
    "Unauthorized",
    "__version__",
    "models",
    "resolve",
]
