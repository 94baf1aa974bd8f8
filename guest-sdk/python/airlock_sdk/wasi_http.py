"""``urllib.request`` over ``wasi:http/outgoing-handler``.

Python's own clients (``urllib.request``, ``http.client``) open sockets,
and a step has none: Airlock links no ``wasi:sockets``. What a step does
have is the standard ``wasi:http/outgoing-handler`` (build.sh puts it in
every Python step's world), which the host sends through the same pipeline
as ``airlock_sdk.http``: grants, address checks, credential injection,
masking, call records. This module is the transport between the two:
importing ``airlock_sdk`` installs an opener whose ``http``/``https``
handler speaks wasi:http, so ``urllib.request.urlopen`` works unchanged::

    import json, urllib.request

    req = urllib.request.Request(
        "https://github.airlock.internal/user/repos",
        headers={"x-airlock-account": "github"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        repos = json.load(resp)

Credentials are named with the host-only headers ``x-airlock-account`` and
``x-airlock-auth`` (see the README, "Standard HTTP clients in steps"); the
step never holds their values.

What differs from CPython's own handler, and why:

- no ``Host`` or ``Connection`` header is sent: wasi:http takes the
  authority separately and the host refuses both as restricted headers;
- ``timeout=`` is sent as wasi:http's first-byte timeout, which the host
  applies to the whole call (bounded further by the run's wall time);
- a refusal by the host (a host outside the grants, a private address, a
  too-large body) raises ``urllib.error.URLError`` whose ``reason`` is a
  :class:`WasiHttpError` naming the wasi:http error code; the host writes
  the reason to the run's log;
- HTTP error statuses raise ``urllib.error.HTTPError`` and redirects are
  followed by urllib itself, as usual: each hop is a new request the host
  checks in full.

``http.client.HTTPConnection`` used directly still needs a socket and fails.
"""

import http.client
import io
import urllib.error
import urllib.request
import urllib.response

# blocking-write-and-flush takes at most 4096 bytes per call (wasi:io).
_WRITE_CHUNK = 4096
_READ_CHUNK = 64 * 1024


class WasiHttpError(Exception):
    """A request the host refused or could not complete.

    ``code`` is the wasi:http ``error-code`` case (``HttpRequestDenied``,
    ``ConnectionRefused``, ...); ``detail`` its payload, if any.
    """

    def __init__(self, code, detail=None):
        self.code = code
        self.detail = detail
        text = code if detail is None else f"{code}: {detail}"
        super().__init__(f"wasi:http error {text}")


# Imported now, while componentize-py pre-initialises the component: a step
# has no filesystem at run time, so a module first imported then is not
# found. Natively (an editor, a unit test) there are no bindings.
try:
    from componentize_py_types import Err as _Err
    from wit_world.imports import outgoing_handler as _outgoing_handler
    from wit_world.imports import streams as _streams
    from wit_world.imports import types as _types
except ImportError as _e:  # pragma: no cover - only outside a component
    _missing = str(_e)
    _outgoing_handler = None
else:
    _missing = None


def _bindings():
    if _outgoing_handler is None:
        raise urllib.error.URLError(
            "urllib over wasi:http works only inside a step component built with "
            f"guest-sdk/python/build.sh ({_missing})"
        )
    return _outgoing_handler, _streams, _types


def _method(types, name):
    known = {
        "GET": types.Method_Get,
        "HEAD": types.Method_Head,
        "POST": types.Method_Post,
        "PUT": types.Method_Put,
        "DELETE": types.Method_Delete,
        "CONNECT": types.Method_Connect,
        "OPTIONS": types.Method_Options,
        "TRACE": types.Method_Trace,
        "PATCH": types.Method_Patch,
    }
    cls = known.get(name.upper())
    return cls() if cls else types.Method_Other(name)


def _error(e):
    """A wasi:http ``error-code`` (the Err payload) as a WasiHttpError."""
    value = getattr(e, "value", e)
    code = type(value).__name__.removeprefix("ErrorCode_")
    return WasiHttpError(code, getattr(value, "value", None))


def _request_body(req):
    data = req.data
    if data is None:
        return b""
    if isinstance(data, str):
        raise TypeError("POST data should be bytes, an iterable of bytes, or a file object")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if hasattr(data, "read"):
        return data.read()
    return b"".join(data)


def _write_body(types, out_body, data):
    stream = out_body.write()
    try:
        for start in range(0, len(data), _WRITE_CHUNK):
            stream.blocking_write_and_flush(data[start : start + _WRITE_CHUNK])
    finally:
        stream.__exit__(None, None, None)
    types.OutgoingBody.finish(out_body, None)


def _read_body(types, streams, response):
    body = response.consume()
    stream = body.stream()
    chunks = []
    try:
        while True:
            try:
                chunks.append(stream.blocking_read(_READ_CHUNK))
            except Exception as e:  # componentize_py_types.Err(StreamError)
                if isinstance(getattr(e, "value", None), streams.StreamError_Closed):
                    break
                raise urllib.error.URLError(f"reading the response body failed: {e!r}") from e
    finally:
        stream.__exit__(None, None, None)
    types.IncomingBody.finish(body)
    return b"".join(chunks)


def send(req):
    """Sends a ``urllib.request.Request`` over wasi:http; a response object
    as ``urlopen`` returns (``status``, ``headers``, ``read()``, ...)."""
    outgoing_handler, streams, types = _bindings()
    scheme = req.type
    if scheme not in ("http", "https"):
        raise urllib.error.URLError(f"unknown url type: {scheme}")
    data = _request_body(req)
    entries = []
    # Request headers as urllib merges them (unredirected ones too), minus
    # those wasi:http carries itself or the host refuses.
    for name, value in req.header_items():
        if name.lower() in ("host", "connection"):
            continue
        entries.append((name.lower(), str(value).encode("latin-1")))
    if data and not req.has_header("Content-length"):
        entries.append(("content-length", str(len(data)).encode()))
    try:
        fields = types.Fields.from_list(entries)
    except Exception as e:
        raise urllib.error.URLError(f"a header was refused: {e!r}") from e
    request = types.OutgoingRequest(fields)
    request.set_method(_method(types, req.get_method()))
    request.set_scheme(types.Scheme_Https() if scheme == "https" else types.Scheme_Http())
    request.set_authority(req.host)
    selector = req.selector or "/"
    request.set_path_with_query(selector)
    options = None
    timeout = getattr(req, "timeout", None)
    if isinstance(timeout, (int, float)) and timeout > 0:
        options = types.RequestOptions()
        options.set_first_byte_timeout(int(timeout * 1_000_000_000))
    out_body = request.body()
    # handle() first: the host reads the body while the guest writes it.
    future = outgoing_handler.handle(request, options)
    try:
        _write_body(types, out_body, data)
    except Exception as e:
        # The host may refuse the request without reading its body; then
        # the response future says why, and that is the error to raise.
        write_error = e
    else:
        write_error = None
    result = future.get()
    while result is None:
        with future.subscribe() as pollable:
            pollable.block()
        result = future.get()
    future.__exit__(None, None, None)
    # option<result<result<incoming-response, error-code>>>; the outer Err
    # only if the result were taken twice, which this code never does.
    if isinstance(result, _Err):
        raise urllib.error.URLError("the wasi:http response was already taken")
    if isinstance(result.value, _Err):
        raise urllib.error.URLError(_error(result.value))
    if write_error is not None:
        raise urllib.error.URLError(f"sending the request body failed: {write_error!r}")
    response = result.value.value
    status = response.status()
    headers = http.client.HTTPMessage()
    for name, value in response.headers().entries():
        headers[name] = value.decode("latin-1")
    body = _read_body(types, streams, response)
    response.__exit__(None, None, None)
    resp = urllib.response.addinfourl(io.BytesIO(body), headers, req.get_full_url(), status)
    resp.msg = http.client.responses.get(status, "")
    resp.reason = resp.msg
    return resp


class WasiHttpHandler(urllib.request.AbstractHTTPHandler):
    """The ``http`` and ``https`` handler of the opener this SDK installs."""

    # Before urllib's own handlers, which need sockets (and an ``ssl``
    # module, which this Python has not: ``HTTPSHandler`` may not exist).
    handler_order = 100

    # urllib's own preparation (Content-Type of form data, Content-Length)
    # for both schemes.
    http_request = urllib.request.AbstractHTTPHandler.do_request_
    https_request = urllib.request.AbstractHTTPHandler.do_request_

    def http_open(self, req):
        return send(req)

    def https_open(self, req):
        return send(req)


def install():
    """Makes ``urllib.request.urlopen`` use wasi:http (done on import of
    ``airlock_sdk``; call it again after installing an opener of your own
    only if that opener should use wasi:http too)."""
    urllib.request.install_opener(urllib.request.build_opener(WasiHttpHandler()))


__all__ = ["WasiHttpError", "WasiHttpHandler", "install", "send"]
