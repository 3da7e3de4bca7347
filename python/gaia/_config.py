"""Where the server is and which token to send: the same lookup as the ``gaia`` command line.

- server: the argument, else ``GAIA_SERVER``, else ``http://127.0.0.1:7434``;
- token: the argument, else ``GAIA_TOKEN``, else the admin token a server on this machine keeps
  in ``<data dir>/admin.token``, the data dir being the argument, else ``GAIA_DATA_DIR``, else
  ``./gaia-data``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple, Union

from ._errors import ConfigError

DEFAULT_SERVER = "http://127.0.0.1:7434"
"""The server a client talks to when none is named (``gaia_core::client::DEFAULT_SERVER``)."""

DEFAULT_DATA_DIR = "./gaia-data"
"""The data directory ``gaia serve`` uses when none is named."""

ADMIN_TOKEN_FILE = "admin.token"
"""The file in a server's data directory that keeps its generated admin token."""


def resolve(
    server: Optional[str] = None,
    token: Optional[str] = None,
    data_dir: Union[str, "os.PathLike[str]", None] = None,
) -> Tuple[str, str]:
    """The server URL and token to use, looked up as the CLI does; ``ConfigError`` if no
    token can be found."""
    url = (server or os.environ.get("GAIA_SERVER") or DEFAULT_SERVER).strip().rstrip("/")
    if not (url.startswith("http://") or url.startswith("https://")):
        raise ConfigError(f"server URL {url!r} must start with http:// or https://")
    chosen = token if token is not None else os.environ.get("GAIA_TOKEN")
    if chosen is not None and chosen.strip():
        return url, chosen.strip()
    folder = Path(data_dir or os.environ.get("GAIA_DATA_DIR") or DEFAULT_DATA_DIR)
    path = folder / ADMIN_TOKEN_FILE
    try:
        kept = path.read_text().strip()
    except OSError:
        kept = ""
    if not kept:
        raise ConfigError(
            "no token: pass token= or set GAIA_TOKEN (gaia serve printed the admin token; "
            "`gaia token create` makes others), or, on the server's machine, point data_dir= / "
            f"GAIA_DATA_DIR at its data dir (looked in {path})"
        )
    return url, kept
