"""airlock_sdk: write Airlock steps in Python.

A step is a WebAssembly component that takes JSON in and gives JSON out.
Decorate one function of the parsed input with :func:`step` and build the
module with componentize-py (``guest-sdk/python/build.sh``); the WIT
bindings stay out of sight::

    import airlock_sdk as airlock
    from airlock_sdk import log

    @airlock.step
    def run(input):
        name = input.get("name", "")
        if not name:
            raise airlock.Error("name must not be empty", code="empty_name")
        log.info(f"greeting {name}")
        return {"greeting": f"Hello, {name}!"}

What the host does with your function:

- the input JSON is parsed (``json.loads``) and passed as the one argument;
- the return value is serialised with ``json.dumps`` and becomes the output
  (a value ``json`` cannot serialise ends the run with code
  ``invalid_output``);
- a raised :class:`Error` becomes the run's error
  ``{"message", "code"?, "details"?}``; any other exception becomes
  ``{"message": "<Type>: <text>", "code": "unhandled_exception"}`` and its
  traceback lands in the run's log (stderr);
- ``print`` lands in the run's log as ``stdout`` lines, like :mod:`log` lines.

The same shape as the Rust SDK (``guest-sdk/src``): :mod:`log`,
:mod:`context`, :mod:`secrets` (handles with ``reveal``), :mod:`crypto`
(``hmac`` keyed by a handle) and :mod:`http` (a builder with ``account``,
``bearer`` and ``json``).

Importing this package also makes the standard ``urllib.request`` send over
``wasi:http`` (:mod:`airlock_sdk.wasi_http`), through the same host pipeline.
"""

from ._error import Error
from ._step import step
from . import context, crypto, http, log, secrets, wasi_http

wasi_http.install()

__all__ = ["Error", "step", "context", "crypto", "http", "log", "secrets", "wasi_http"]
