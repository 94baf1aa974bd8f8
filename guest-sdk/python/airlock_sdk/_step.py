"""The ``@step`` decorator: a function of parsed JSON becomes ``run``."""

import json
import sys
import traceback

from ._error import Error


def _compact(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _call(fn, input_text):
    """JSON in, the step's function, JSON out; every failure as Error JSON."""
    try:
        value = json.loads(input_text)
    except ValueError as e:
        # The host only sends valid JSON; this guards direct callers.
        raise Error(f"the input is not JSON: {e}", code="invalid_input")
    try:
        result = fn(value)
    except Error:
        raise
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        raise Error(f"{type(e).__name__}: {e}", code="unhandled_exception") from e
    try:
        return _compact(result)
    except (TypeError, ValueError) as e:
        raise Error(
            f"the step's output could not be serialized: {e}", code="invalid_output"
        ) from e


def run_json(fn, input_text):
    """Runs ``fn`` on ``input_text``: ``(True, output)`` or ``(False, error)``."""
    try:
        return True, _call(fn, input_text)
    except Error as e:
        return False, e.to_json()


def step(fn):
    """Makes ``fn`` (one argument: the parsed input) the step's ``run`` export.

    componentize-py looks for a class named ``WitWorld`` in the app module;
    the decorator puts one there, so the module needs nothing else.
    """
    from ._host import err_type

    Err = err_type()

    class WitWorld:
        def run(self, input: str) -> str:
            ok, text = run_json(fn, input)
            if ok:
                return text
            raise Err(text)

    module = sys.modules.get(fn.__module__)
    if module is None:
        raise RuntimeError(f"@step: cannot find the module {fn.__module__!r}")
    setattr(module, "WitWorld", WitWorld)
    return fn
