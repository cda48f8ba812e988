"""A fake OpenAI API in the wire format the `openai` SDK reads; `route` answers an `evals.fakes.http.FakeServer`.

Routes (under `/v1`, with `Authorization: Bearer KEY` required on each), answered for one organisation: the
one the `OpenAI-Organization` header names, or without it the key's default organisation (the `FakeOpenAI`
itself). `member_of` adds another organisation the key belongs to, with fine-tunes of its own; a header naming
one it does not belong to gets what the API answers a key outside that organisation: 401
`mismatched_organization`, "OpenAI-Organization header should match organization for API key".

- `GET /models`: `{"object": "list", "data": [model...]}`, not paginated (the SDK reads it as a `SyncPage`);
  a model is `{"id", "object": "model", "created", "owned_by"}` plus `shutdown_date` when one is set;
- `GET /models/{id}`: the model, or 404 `model_not_found`;
- `GET /fine_tuning/jobs?after=&limit=`: newest job first, `{"object": "list", "data", "has_more"}`
  (the SDK's `SyncCursorPage` asks for the next page with `after=<id of the last job>`);
- `GET /fine_tuning/jobs/{id}`: the job (`fine_tuning.jobs.retrieve`), or 404 `fine_tune_not_found`;
- `GET /fine_tuning/jobs/{id}/checkpoints?after=&limit=`: `{"object": "list", "data", "first_id", "last_id",
  "has_more"}`;
- `GET /files/{id}`: the file object `{"id", "object": "file", "bytes", "created_at", "filename", "purpose",
  "status"}` (`files.retrieve`), or 404;
- `GET /files/{id}/content`: the bytes, `application/octet-stream` (`files.content`), except for a file of
  purpose `fine-tune` (training and validation data), which the API does not let anyone download: 400
  "Not allowed to download files of purpose: fine-tune". A job's result file is a CSV of its metrics per
  step, served base64-encoded as the API serves result files.

Errors carry OpenAI's body `{"error": {"message", "type", "param", "code"}}`: 401 `invalid_api_key`
for a wrong key (whose message here echoes the whole key, harsher than the real API, which masks
it, so a leak would show), 404 `model_not_found`, and for an unknown path 404 "Invalid URL" with
code null, as the real API answers a wrong base URL. Faults come from `FakeServer.faults`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from evals.fakes.http import Fault, Reply, Request

API_KEY = "sk-test-Zq8vN3xT5mLr2WkP9dHs4Yb7"
ORG = "org-acme1234"
BASE_CREATED = 1721172741


def error(status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
          param: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    return Reply.json({"error": {"message": message, "type": type_, "param": param, "code": code}}, status, headers)


def rate_limited(headers: dict[str, str], path_prefix: str = "") -> Fault:
    """A 429 as OpenAI sends it, with the given retry headers (`retry-after`, `retry-after-ms`)."""
    body = error(429, "Rate limit reached for requests", type_="requests", code="rate_limit_exceeded").body
    return Fault.http(429, {"Content-Type": "application/json", **headers}, body, path_prefix)


def base_model(model_id: str, *, created: int = BASE_CREATED, shutdown_date: str | None = None) -> dict[str, Any]:
    model = {"id": model_id, "object": "model", "created": created, "owned_by": "system"}
    if shutdown_date:
        model["shutdown_date"] = shutdown_date
    return model


@dataclass
class FakeOpenAI:
    """The state behind the fake API for one organisation: models, fine-tuning jobs (newest first) and their
    checkpoints; and the other organisations the key belongs to, by id."""

    api_key: str = API_KEY
    organization_id: str = ORG
    owner: str = "acme"  # the organisation's name, which the API writes into its fine-tuned models' ids
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # the file objects, by id
    contents: dict[str, bytes] = field(default_factory=dict)  # their bytes, by id
    default_limit: int = 20
    others: dict[str, FakeOpenAI] = field(default_factory=dict)
    _serial: int = 0

    def member_of(self, organization_id: str, owner: str) -> FakeOpenAI:
        """Another organisation of this key, empty; its jobs and files are numbered apart from this one's, as
        the API's ids are unique across organisations."""
        other = FakeOpenAI(self.api_key, organization_id, owner, _serial=100 * (len(self.others) + 1))
        self.others[organization_id] = other
        return other

    def add_base(self, model_id: str, **kwargs: Any) -> None:
        self.models[model_id] = base_model(model_id, **kwargs)

    def fine_tune(self, base: str, *, suffix: str = "", checkpoints: int = 0, status: str = "succeeded",
                  trained_tokens: int = 12_000, validation_file: str | None = None) -> dict[str, Any]:
        """Run a fine-tuning job on `base` (a base model or a fine-tuned one): its job, model and checkpoints."""
        self._serial += 1
        serial = self._serial
        created = 1_730_000_000 + serial * 3600
        root = base.split(":")[1] if base.startswith("ft:") else base
        model_id = f"ft:{root}:{self.owner}:{suffix}:Ab{serial:06d}"
        job_id = f"ftjob-{serial:04d}Kq7pXw"
        succeeded = status == "succeeded"
        job = {
            "object": "fine_tuning.job", "id": job_id, "model": base, "created_at": created,
            "finished_at": created + 1800 if succeeded else None,
            "fine_tuned_model": model_id if succeeded else None, "organization_id": self.organization_id,
            "result_files": [f"file-result{serial}"] if succeeded else [], "status": status,
            "validation_file": validation_file, "training_file": f"file-train{serial}",
            "hyperparameters": {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 1.8},
            "trained_tokens": trained_tokens if succeeded else None, "error": None,
            "user_provided_suffix": suffix or None, "seed": 1234 + serial, "estimated_finish": None,
            "integrations": [], "metadata": None,
            "method": {"type": "supervised", "supervised": {"hyperparameters": {
                "n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 1.8}}},
        }
        self.jobs.insert(0, job)
        self.add_file(job["training_file"], "fine-tune", b'{"messages": [{"role": "user", "content": "hi"}]}\n',
                      created - 60)
        if succeeded:
            metrics = b"step,train_loss,train_accuracy\n1,1.25,0.41\n2,0.83,0.62\n"
            self.add_file(job["result_files"][0], "fine-tune-results", base64.b64encode(metrics), created + 1800)
        steps = [(index + 1) * 100 for index in range(checkpoints)]
        self.checkpoints[job_id] = [{
            "object": "fine_tuning.job.checkpoint", "id": f"ftckpt_{serial:04d}s{step}",
            "created_at": created + step, "fine_tuned_model_checkpoint": f"{model_id}:ckpt-step-{step}",
            "fine_tuning_job_id": job_id, "step_number": step,
            "metrics": {"step": float(step), "train_loss": round(1.0 / step, 4), "train_mean_token_accuracy": 0.9,
                        "valid_loss": None, "valid_mean_token_accuracy": None, "full_valid_loss": None,
                        "full_valid_mean_token_accuracy": None},
        } for step in reversed(steps)]  # newest first, as the API lists them
        if succeeded:
            self.models[model_id] = {"id": model_id, "object": "model", "created": created + 1800,
                                     "owned_by": self.owner}
            for step in steps:
                name = f"{model_id}:ckpt-step-{step}"
                self.models[name] = {"id": name, "object": "model", "created": created + step,
                                     "owned_by": self.owner}
        return job

    def add_file(self, file_id: str, purpose: str, content: bytes, created_at: int) -> None:
        filename = "step_metrics.csv" if purpose == "fine-tune-results" else f"{file_id}.jsonl"
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(content), "created_at": created_at,
                               "filename": filename, "purpose": purpose, "status": "processed"}
        self.contents[file_id] = content

    # -- the wire --------------------------------------------------------------------------------

    def route(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
            return error(401, f"Incorrect API key provided: {given}. You can find your API key at "
                              "https://platform.openai.com/account/api-keys.", code="invalid_api_key")
        organization = request.headers.get("openai-organization", self.organization_id)
        if organization == self.organization_id:
            return self._answer(request)
        if organization in self.others:
            return self.others[organization]._answer(request)
        return error(401, "OpenAI-Organization header should match organization for API key",
                     code="mismatched_organization")

    def _answer(self, request: Request) -> Reply:
        path = request.path
        if path == "/v1/models":
            return Reply.json({"object": "list", "data": list(self.models.values())})
        if path.startswith("/v1/models/"):
            model = self.models.get(path.removeprefix("/v1/models/"))
            if model is None:
                name = path.removeprefix("/v1/models/")
                return error(404, f"The model `{name}` does not exist or you do not have access to it.",
                             code="model_not_found")
            return Reply.json(model)
        if path == "/v1/fine_tuning/jobs":
            return self._cursor_page(self.jobs, request, with_ids=False)
        parts = path.split("/")
        if parts[:3] == ["", "v1", "files"] and (len(parts) == 4 or len(parts) == 5 and parts[4] == "content"):
            return self._file(parts[3], content=len(parts) == 5)
        if len(parts) == 5 and parts[:4] == ["", "v1", "fine_tuning", "jobs"]:
            job = next((job for job in self.jobs if job["id"] == parts[4]), None)
            if job is None:
                return error(404, f"Could not find fine-tune: {parts[4]}", code="fine_tune_not_found")
            return Reply.json(job)
        if len(parts) == 6 and parts[:4] == ["", "v1", "fine_tuning", "jobs"] and parts[5] == "checkpoints":
            if parts[4] not in self.checkpoints:
                return error(404, f"Could not find fine-tune: {parts[4]}", code="fine_tune_not_found")
            return self._cursor_page(self.checkpoints[parts[4]], request, with_ids=True)
        return error(404, f"Invalid URL ({request.method} {path})")

    def _file(self, file_id: str, *, content: bool) -> Reply:
        file = self.files.get(file_id)
        if file is None:
            return error(404, f"No such File object: {file_id}", param="id")
        if not content:
            return Reply.json(file)
        if file["purpose"] == "fine-tune":
            return error(400, "Not allowed to download files of purpose: fine-tune")
        return Reply(200, self.contents[file_id], {"Content-Type": "application/octet-stream"})

    def _cursor_page(self, items: list[dict[str, Any]], request: Request, *, with_ids: bool) -> Reply:
        limit = int(request.query.get("limit", [self.default_limit])[0])
        after = request.query.get("after", [None])[0]
        ids = [item["id"] for item in items]
        start = 0 if after is None else ids.index(after) + 1 if after in ids else len(items)
        page = items[start : start + limit]
        body: dict[str, Any] = {"object": "list", "data": page, "has_more": start + limit < len(items)}
        if with_ids:
            body |= {"first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None}
        return Reply.json(body)
