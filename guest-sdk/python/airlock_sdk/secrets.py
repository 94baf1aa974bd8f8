"""Secrets the step's manifest grants, as opaque handles.

::

    key = secrets.get("SIGNING_KEY")        # a handle: the value stays in the host
    mac = crypto.hmac_sha256(key, b"payload")
    token = secrets.get("TOKEN").reveal()   # only with a reveal grant

Every value a run obtains is masked (``[REDACTED:NAME]``) from its log,
output and errors, with its common encodings.
"""

from ._error import Error
from ._host import err_type, imports

#: The kinds of :class:`SecretError`, as the WIT names them (snake_case).
NOT_GRANTED = "not_granted"
NOT_FOUND = "not_found"
REVEAL_NOT_GRANTED = "reveal_not_granted"

_MESSAGES = {
    NOT_GRANTED: "not-granted: the step's manifest does not grant this secret",
    NOT_FOUND: "not-found: no value is stored under this name",
    REVEAL_NOT_GRANTED: "reveal-not-granted: the step's manifest does not allow revealing this secret",
}


class SecretError(Error):
    """Why a secret call failed; ``kind`` (also the ``code``) is one of
    :data:`NOT_GRANTED`, :data:`NOT_FOUND`, :data:`REVEAL_NOT_GRANTED`."""

    def __init__(self, kind, name):
        super().__init__(f"secret {name!r}: {_MESSAGES[kind]}", code=kind)
        self.kind = kind
        self.name = name


def _kind(wit_error):
    return wit_error.name.lower()


class Secret:
    """An opaque handle to one secret, valid for the current run."""

    __slots__ = ("_handle", "_name")

    def __init__(self, handle, name):
        self._handle = handle
        self._name = name

    @property
    def name(self):
        """The name it was obtained under."""
        return self._name

    def reveal(self):
        """The plaintext value, if the manifest grants reveal for this name."""
        Err = err_type()
        try:
            return self._handle.reveal()
        except Err as e:
            raise SecretError(_kind(e.value), self._name) from None

    def __repr__(self):
        return f"Secret({self._name!r})"


def get(name):
    """Returns a handle to the secret ``name``; raises :class:`SecretError`."""
    Err = err_type()
    try:
        handle = imports().secrets.get(name)
    except Err as e:
        raise SecretError(_kind(e.value), name) from None
    return Secret(handle, name)
