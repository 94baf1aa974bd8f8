"""Each route once, as a :class:`Call`: method, path, query, body and the
model of the answer. The sync and async clients send them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from pydantic import BaseModel

from . import models
from ._common import path

T = TypeVar("T")


@dataclass
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    query: dict[str, str] | None = None
    json: Any = None
    files: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _model(cls: type[BaseModel]) -> Callable[[Any], Any]:
    return cls.model_validate


def _none(_: Any) -> None:
    return None


def _body(model: BaseModel | dict[str, Any]) -> Any:
    if isinstance(model, BaseModel):
        return model.model_dump(mode="json", exclude_none=True)
    return {k: v for k, v in model.items() if v is not None}


def list_projects() -> Call[list[models.ProjectView]]:
    return Call("GET", path("v1", "projects"), lambda b: models.ProjectList.model_validate(b).projects)


def create_project(name: str) -> Call[models.ProjectView]:
    return Call("POST", path("v1", "projects"), _model(models.ProjectView), json={"name": name})


def get_project(name: str) -> Call[models.ProjectView]:
    return Call("GET", path("v1", "projects", name), _model(models.ProjectView))


def create_key(name: str, scopes: list[str], project: str | None) -> Call[models.CreatedKey]:
    body = _body({"name": name, "scopes": scopes, "project": project})
    return Call("POST", path("v1", "keys"), _model(models.CreatedKey), json=body)


def create_oauth_client(name: str, scopes: list[str], project: str | None) -> Call[models.CreatedClient]:
    body = _body({"name": name, "scopes": scopes, "project": project})
    return Call("POST", path("v1", "oauth", "clients"), _model(models.CreatedClient), json=body)


def create_account(
    project: str, app: str, external_user_id: str, credentials: dict[str, str], custom_fields: dict[str, str] | None
) -> Call[models.AccountView]:
    body = _body(
        {"app": app, "external_user_id": external_user_id, "credentials": credentials, "custom_fields": custom_fields}
    )
    return Call("POST", path("v1", "projects", project, "accounts"), _model(models.AccountView), json=body)


def list_accounts(project: str, external_user_id: str | None, app: str | None) -> Call[list[models.AccountView]]:
    query = {k: v for k, v in {"external_user_id": external_user_id, "app": app}.items() if v is not None}
    return Call(
        "GET",
        path("v1", "projects", project, "accounts"),
        lambda b: models.AccountList.model_validate(b).accounts,
        query=query,
    )


def get_account(project: str, id: str) -> Call[models.AccountView]:
    return Call("GET", path("v1", "projects", project, "accounts", id), _model(models.AccountView))


def delete_account(project: str, id: str) -> Call[None]:
    return Call("DELETE", path("v1", "projects", project, "accounts", id), _none)


def create_connect_token(project: str, body: dict[str, Any]) -> Call[models.CreatedConnectToken]:
    return Call(
        "POST",
        path("v1", "projects", project, "connect", "tokens"),
        _model(models.CreatedConnectToken),
        json=_body(body),
    )


def get_connect_token(project: str, id: str) -> Call[models.ConnectTokenView]:
    return Call("GET", path("v1", "projects", project, "connect", "tokens", id), _model(models.ConnectTokenView))


def delete_connect_token(project: str, id: str) -> Call[None]:
    return Call("DELETE", path("v1", "projects", project, "connect", "tokens", id), _none)


def put_secret(project: str, name: str, value: str) -> Call[models.PutOutcome]:
    return Call("PUT", path("v1", "projects", project, "secrets", name), _model(models.PutOutcome), json={"value": value})


def put_step(project: str, step: str, component: bytes, manifest: str | None) -> Call[models.UploadOutcome]:
    files: dict[str, Any] = {"component": ("component.wasm", component, "application/wasm")}
    if manifest is not None:
        files["manifest"] = (None, manifest, "text/plain; charset=utf-8")
    return Call("PUT", path("v1", "projects", project, "steps", step), _model(models.UploadOutcome), files=files)


def run(project: str, step: str, body: dict[str, Any]) -> Call[models.RunResult]:
    return Call("POST", path("v1", "projects", project, "steps", step, "runs"), _model(models.RunResult), json=_body(body))


def queue_run(project: str, step: str, body: dict[str, Any], idempotency_key: str | None) -> Call[models.QueuedRun]:
    headers = {"prefer": "respond-async"}
    if idempotency_key:
        headers["idempotency-key"] = idempotency_key
    return Call(
        "POST",
        path("v1", "projects", project, "steps", step, "runs"),
        _model(models.QueuedRun),
        json=_body(body),
        headers=headers,
    )


def get_run(project: str, id: str) -> Call[models.RunView]:
    return Call("GET", path("v1", "projects", project, "runs", id), _model(models.RunView))


def get_logs(project: str, id: str) -> Call[models.RunLogs]:
    return Call("GET", path("v1", "projects", project, "runs", id, "logs"), _model(models.RunLogs))
