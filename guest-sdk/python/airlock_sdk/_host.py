"""The generated bindings, imported only when a host call is made.

``wit_world`` exists only inside a component that componentize-py built;
importing this SDK natively (an editor, a unit test of pure helpers) works,
and a host call there says why it cannot work instead of an ImportError
from deep inside.
"""


def imports():
    try:
        from wit_world import imports as bindings
    except ImportError as e:  # pragma: no cover - only outside a component
        raise RuntimeError(
            "airlock_sdk host calls work only inside a step component built with "
            "componentize-py against Airlock's wit/ (see guest-sdk/python/build.sh)"
        ) from e
    return bindings


def err_type():
    from componentize_py_types import Err

    return Err
