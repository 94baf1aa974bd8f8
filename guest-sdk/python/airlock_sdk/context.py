"""The current run's identity; none of it secret."""

from dataclasses import dataclass
from typing import Optional

from ._host import imports


@dataclass(frozen=True)
class Context:
    run_id: str
    step: str
    project: str
    external_user_id: Optional[str]
    #: What started the run: ``"cli"``, ``"api"`` or ``"http"``.
    trigger: str


def get():
    """Returns the context of the current run."""
    c = imports().context.get()
    return Context(
        run_id=c.run_id,
        step=c.step,
        project=c.project,
        external_user_id=c.external_user_id,
        trigger=c.trigger.name.lower(),
    )


def attempt():
    """Which attempt of the run this is: 1 for the first.

    A queued run runs again (the next attempt) when its step's ``[retry]``
    policy retries a failure, or when the node running it stopped mid-run;
    make side effects idempotent, e.g. with :func:`idempotency_key`.
    """
    return imports().context.attempt()


def idempotency_key():
    """The ``Idempotency-Key`` the run was queued with, or ``None``.

    The same for every attempt: a natural key for an upstream's own
    idempotency header.
    """
    return imports().context.idempotency_key()
