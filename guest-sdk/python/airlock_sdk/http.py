"""Outbound HTTP, made by the host on the step's behalf.

::

    # As the run's end user: the host inserts their GitHub token.
    repos = http.get("/user/repos").account("github").send().json()

    # With a secret handle as a bearer token, never reading it.
    key = secrets.get("API_KEY")
    resp = http.post("https://api.example.com/v1/items").bearer(key).json({"name": "x"}).send()
    if resp.status >= 400:
        raise airlock.Error(f"upstream said {resp.status}")

The host checks every request against the step's manifest grants and its
egress policy; see the README's "Outbound HTTP" section.
"""

import json as _json

from ._error import Error
from ._host import err_type, imports

# The kinds of HttpError, as the WIT names them (snake_case); each is also its code.
DENIED = "denied"
INVALID_REQUEST = "invalid_request"
TIMEOUT = "timeout"
TOO_LARGE = "too_large"
CONNECTION_FAILED = "connection_failed"
CREDENTIAL_UNUSABLE = "credential_unusable"
RATE_LIMITED = "rate_limited"
#: The request body could not be serialised, or the response not parsed.
BODY = "body"


class HttpError(Error):
    """Why a request failed. ``kind`` is one of the constants above;
    ``retry_after_ms`` is set for :data:`RATE_LIMITED`."""

    def __init__(self, kind, message, retry_after_ms=None):
        super().__init__(f"{kind.replace('_', ' ')}: {message}", code=kind)
        self.kind = kind
        self.retry_after_ms = retry_after_ms


def _from_wit(e):
    wit = imports().http
    kinds = [
        (wit.Error_Denied, DENIED),
        (wit.Error_InvalidRequest, INVALID_REQUEST),
        (wit.Error_Timeout, TIMEOUT),
        (wit.Error_TooLarge, TOO_LARGE),
        (wit.Error_ConnectionFailed, CONNECTION_FAILED),
        (wit.Error_CredentialUnusable, CREDENTIAL_UNUSABLE),
    ]
    for cls, kind in kinds:
        if isinstance(e, cls):
            return HttpError(kind, e.value)
    if isinstance(e, wit.Error_RateLimited):
        return HttpError(RATE_LIMITED, f"retry after {e.value} ms", retry_after_ms=e.value)
    return HttpError(CONNECTION_FAILED, repr(e))


class Response:
    """A complete response (masked by the host before the step sees it)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status = status
        #: ``[(name, value), ...]`` in the order received.
        self.headers = headers
        #: The body as bytes.
        self.body = body

    def header(self, name):
        """The first header of that name (case-insensitive), or None."""
        lower = name.lower()
        for n, v in self.headers:
            if n.lower() == lower:
                return v
        return None

    def text(self):
        """The body as UTF-8 text (invalid bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON; :class:`HttpError` of kind ``body`` if it is not."""
        try:
            return _json.loads(self.body)
        except ValueError as e:
            raise HttpError(BODY, f"the response is not JSON: {e}") from None


class RequestBuilder:
    """A request being built. Nothing is sent until :meth:`send`."""

    def __init__(self, method, url):
        self._method = method
        self._url = url
        self._headers = []
        self._body = None
        self._timeout_ms = None
        self._auth = None

    def header(self, name, value):
        """Adds a header. Credentials are the host's job: ``authorization``
        and other restricted headers are refused."""
        self._headers.append((str(name), str(value)))
        return self

    def body(self, body):
        """Sends ``body`` (bytes, or str as UTF-8) as the raw body."""
        self._body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        return self

    def json(self, value):
        """Sends ``value`` as JSON, with ``content-type: application/json``."""
        try:
            self._body = _json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise HttpError(BODY, f"the request body is not serialisable: {e}") from None
        self._headers.append(("content-type", "application/json"))
        return self

    def timeout(self, seconds):
        """Total timeout for this request (never beyond the run's wall time)."""
        self._timeout_ms = max(0, min(int(seconds * 1000), 2**32 - 1))
        return self

    def account(self, app_or_id):
        """As the run's end user: their connected account of this app (a slug
        such as ``"github"``) or an account id (``"acc_..."``). The URL may
        then be a path relative to the app's base URL."""
        self._auth = ("account", str(app_or_id))
        return self

    def bearer(self, secret):
        """``Authorization: Bearer <secret>``, inserted by the host."""
        self._auth = ("bearer", secret)
        return self

    def basic(self, username, password):
        """``Authorization: Basic base64(username:secret)``, inserted by the host."""
        self._auth = ("basic", str(username), password)
        return self

    def secret_header(self, name, secret):
        """A header whose value is the secret, inserted by the host."""
        self._auth = ("header", str(name), secret)
        return self

    def secret_query(self, name, secret):
        """A query parameter whose value is the secret, inserted by the host."""
        self._auth = ("query", str(name), secret)
        return self

    def aws_sigv4(self, access_key_id, secret_key, region, service, session_token=None):
        """Signed by the host with AWS Signature V4 over the final request
        (every header set here, the exact body). ``secret_key`` (and
        ``session_token``) are secret handles; the key never leaves the host."""
        self._auth = ("aws-sigv4", str(access_key_id), secret_key, str(region), str(service), session_token)
        return self

    def digest(self, username, password):
        """HTTP Digest (RFC 7616): the host answers the server's challenge
        with the password, a secret handle."""
        self._auth = ("digest", str(username), password)
        return self

    def _wit_auth(self, wit):
        a = self._auth
        if a is None or a[0] in ("aws-sigv4", "digest"):
            return None
        kind = a[0]
        if kind == "account":
            return wit.Auth_Account(a[1])
        if kind == "bearer":
            return wit.Auth_Bearer(a[1]._handle)
        if kind == "basic":
            return wit.Auth_Basic(wit.BasicAuth(a[1], a[2]._handle))
        named = wit.NamedSecret(a[1], a[2]._handle)
        return wit.Auth_Header(named) if kind == "header" else wit.Auth_Query(named)

    def send(self):
        """Sends the request and waits for the whole response; raises
        :class:`HttpError`."""
        wit = imports().http
        request = wit.Request(
            method=self._method,
            url=self._url,
            headers=[wit.Header(n, v) for n, v in self._headers],
            body=self._body,
            timeout_ms=self._timeout_ms,
            auth=self._wit_auth(wit),
        )
        Err = err_type()
        a = self._auth
        try:
            if a is not None and a[0] == "aws-sigv4":
                token = a[5]._handle if a[5] is not None else None
                r = wit.send_aws_sigv4(request, wit.AwsSigv4(a[1], a[2]._handle, token, a[3], a[4]))
            elif a is not None and a[0] == "digest":
                r = wit.send_digest(request, wit.BasicAuth(a[1], a[2]._handle))
            else:
                r = wit.send(request)
        except Err as e:
            raise _from_wit(e.value) from None
        return Response(r.status, [(h.name, h.value) for h in r.headers], bytes(r.body))


def request(method, url):
    return RequestBuilder(method.upper(), url)


def get(url):
    return RequestBuilder("GET", url)


def post(url):
    return RequestBuilder("POST", url)


def put(url):
    return RequestBuilder("PUT", url)


def patch(url):
    return RequestBuilder("PATCH", url)


def delete(url):
    return RequestBuilder("DELETE", url)
