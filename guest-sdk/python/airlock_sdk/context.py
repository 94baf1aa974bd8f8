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
