"""The error a step returns: ``{"message", "code"?, "details"?}``."""

import json


class Error(Exception):
    """Raise it to end the run with an error the caller can act on.

    ``code`` is a short machine-readable string (``"not_found"``);
    ``details`` any JSON-serialisable value.
    """

    def __init__(self, message, code=None, details=None):
        super().__init__(message)
        self.message = str(message)
        self.code = code
        self.details = details

    def to_dict(self):
        out = {"message": self.message}
        if self.code is not None:
            out["code"] = str(self.code)
        if self.details is not None:
            out["details"] = self.details
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
            return json.dumps(out, ensure_ascii=False, separators=(",", ":"))

    def __str__(self):
        if self.code is None:
            return self.message
        return f"{self.message} ({self.code})"
