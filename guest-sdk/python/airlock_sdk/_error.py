"""The error a step returns: ``{"message", "code"?, "details"?, "retryable"?, "retry_after_ms"?}``."""

import json


class Error(Exception):
    """Raise it to end the run with an error the caller can act on.

    ``code`` is a short machine-readable string (``"not_found"``);
    ``details`` any JSON-serialisable value. ``retryable=True`` marks the
    failure as temporary: a queued run whose manifest's ``[retry]`` policy
    retries ``"error"`` is tried again after its backoff, no sooner than
    ``retry_after_ms`` when given (which implies ``retryable``).
    """

    def __init__(self, message, code=None, details=None, retryable=False, retry_after_ms=None):
        super().__init__(message)
        self.message = str(message)
        self.code = code
        self.details = details
        self.retry_after_ms = None if retry_after_ms is None else max(0, int(retry_after_ms))
        self.retryable = bool(retryable) or self.retry_after_ms is not None

    def to_dict(self):
        out = {"message": self.message}
        if self.code is not None:
            out["code"] = str(self.code)
        if self.details is not None:
            out["details"] = self.details
        out.update(self._retry())
        return out

    def _retry(self):
        out = {}
        if self.retryable:
            out["retryable"] = True
        if self.retry_after_ms is not None:
            out["retry_after_ms"] = self.retry_after_ms
        return out

    def to_json(self):
        """The JSON text the host receives."""
        try:
            return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            # Details json cannot serialise: keep the message and code.
            out = {"message": self.message}
            if self.code is not None:
                out["code"] = str(self.code)
            out.update(self._retry())
            return json.dumps(out, ensure_ascii=False, separators=(",", ":"))

    def __str__(self):
        if self.code is None:
            return self.message
        return f"{self.message} ({self.code})"
