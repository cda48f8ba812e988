"""`hf_discussion`: the proposal as a discussion on the model's own Hugging Face Hub repo, where its
developers already talk about it, through `huggingface_hub.HfApi` (endpoint configurable).

Idempotent by a marker: the discussion's first comment ends with `<!-- weightkeeper:KEY -->`, which the Hub
does not render. Before opening one, the discussions the token's user opened on the repo are read
(`get_repo_discussions(author=...)`, so the repo's other discussions cost nothing) with their first comment
(`get_discussion_details`); one carrying the marker is the one published. A retry (429 and 5xx with the
server's wait, timeouts, resets) looks again before opening again, so a creation the Hub took but did not
answer is not repeated.

A deleted model has no repo to hold a discussion: the Hub answers 404 and the action fails saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx2  # huggingface_hub's own HTTP client: its transport errors surface from HfApi
from huggingface_hub import HfApi
from huggingface_hub.community import DiscussionComment, DiscussionWithDetails
from huggingface_hub.errors import (
    DisabledRepoError,
    HFValidationError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from tools.publish import PublishError, bound_endpoint, channel_token, marked, marker, single_line
from tools.publish.http import retried
from tools.registries.http import RETRY_STATUSES, RetryPolicy, Transient, server_wait, transport_faults
from tools.registries.huggingface import INVALID_TOKEN
from weightkeeper import __version__
from weightkeeper.errors import RegistryUnavailable

T = TypeVar("T")


class HubDiscussionPublisher:
    channel = "hf_discussion"

    def __init__(self, endpoint: str, *, token_env: str, policy: RetryPolicy = RetryPolicy()) -> None:
        self.endpoint, self.token_env, self.policy = endpoint.rstrip("/"), token_env, policy

    def publish(self, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Open the discussion on the approved target, the model's repo id, unless one carries this key."""
        repo = payload["target"]
        bound_endpoint(payload, self.endpoint, "hf_endpoint")
        try:
            validate_repo_id(repo)
        except HFValidationError as exc:
            raise PublishError(f"the action's target {repo!r} is not a Hub repo id (letters, digits, '-', '_' and "
                               "'.', with one '/'); nothing was published") from exc
        api = HfApi(endpoint=self.endpoint, token=channel_token(self.token_env, "hf_token_env"),
                    library_name="weightkeeper", library_version=__version__)
        what = f"opening a discussion on {repo} at {self.endpoint}"
        try:
            return retried(lambda: hub_attempt(what, lambda: self._find_or_open(api, repo, payload, idempotency_key)),
                           what=what, policy=self.policy)
        except HfHubHTTPError as exc:
            raise PublishError(f"{what}: {self._explain(exc, repo)}") from exc

    def _find_or_open(self, api: HfApi, repo: str, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        mark = marker(idempotency_key)
        user = api.whoami()["name"]
        for discussion in api.get_repo_discussions(repo, author=user, discussion_type="discussion",
                                                   repo_type="model"):
            details = api.get_discussion_details(repo, discussion.num, repo_type="model")
            first = next((event for event in details.events if isinstance(event, DiscussionComment)), None)
            if first is not None and mark in first.content:
                return _detail(details, already_published=True)
        created = api.create_discussion(repo, single_line(payload["title"]),
                                        description=marked(payload["body"], idempotency_key), repo_type="model")
        return _detail(created, already_published=False)

    def _explain(self, exc: HfHubHTTPError, repo: str) -> str:
        status = exc.response.status_code
        says = exc.server_message or exc.response.headers.get("X-Error-Message") or exc.response.reason_phrase
        if isinstance(exc, RepositoryNotFoundError):
            return (f"the Hub has no model repo {repo} that the token in ${self.token_env} can read (HTTP {status}); "
                    "a deleted model has no repo to hold a discussion: choose another [proposals] channel for it")
        if isinstance(exc, DisabledRepoError):
            return f"{repo} is disabled on the Hub (HTTP {status}), so it takes no discussion"
        if status == 401 or says == INVALID_TOKEN:
            return (f"the Hub rejected the token in ${self.token_env} (HTTP {status}: {says}); put a valid token "
                    "with write access in it")
        if status == 403:
            return (f"the Hub refused (HTTP {status}: {says}); discussions may be disabled on {repo}, or the token "
                    f"in ${self.token_env} may lack write access")
        return f"the Hub answered HTTP {status}: {says}"


def _detail(discussion: DiscussionWithDetails, *, already_published: bool) -> dict[str, Any]:
    return {"url": discussion.url, "number": discussion.num, "already_published": already_published}


def hub_attempt(what: str, call: Callable[[], T]) -> T:
    """One try of a huggingface_hub call, its transient faults (429 and 5xx with the server's own wait,
    timeouts, resets) raised as `Transient` for `with_retries`. Other HTTP errors are raised for the caller
    to read; an answer that cannot be read, or offline mode, makes the Hub unavailable."""
    try:
        with transport_faults(httpx2):
            return call()
    except HfHubHTTPError as exc:
        if exc.response.status_code not in RETRY_STATUSES:
            raise
        raise Transient(f"HTTP {exc.response.status_code}", server_wait(exc.response)) from exc
    except OfflineModeIsEnabled as exc:
        raise RegistryUnavailable(f"{what}: HF_HUB_OFFLINE is set; unset it to ask the Hub") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryUnavailable(f"{what}: the answer cannot be read ({type(exc).__name__}: {exc}); "
                                  "nothing was concluded") from exc
