"""A typed client for the REST API of ``airlock serve``: :class:`Client`
(sync) and :class:`AsyncClient` (async), both on ``httpx``.

The models in :mod:`airlock_client.models` are generated from
``docs/openapi.json`` (``scripts/generate.sh``); the rest is written by hand.
"""

from ._common import (
    FORWARD_PREFIX,
    AirlockApiError,
    AirlockConnectionError,
    AirlockError,
    ClientCredentials,
    LogEnd,
    LogLine,
    ProxyResponse,
    encode_target,
    refresh_margin,
)
from .aio import AsyncClient
from .client import Client

__all__ = [
    "FORWARD_PREFIX",
    "AirlockApiError",
    "AirlockConnectionError",
    "AirlockError",
    "AsyncClient",
    "Client",
    "ClientCredentials",
    "LogEnd",
    "LogLine",
    "ProxyResponse",
    "encode_target",
    "refresh_margin",
]
