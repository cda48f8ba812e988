"""`webhook`: the proposal as a JSON POST to a URL the config names, for a system of the team's own to route.

The POST carries `{title, body, target, model, registry, idempotency_key}` and an `Idempotency-Key` header
(the claim's key); any 2xx is success. Sending once is shared between the two sides: the executor never
runs a claim whose result is recorded, and the receiver dedupes by the header. A POST retried after a
timeout or a 5xx, or re-sent after a crash between the POST and recording its result, carries the same
`Idempotency-Key`, so a receiver that honours it acts once. A receiver that answers a replay with
`Idempotent-Replayed: true` (as Stripe's API does) has the detail say `already_published`.
"""

from __future__ import annotations

from typing import Any

from tools.publish import PublishError, channel_token, single_line
from tools.publish.http import client, retried, server_says
from tools.registries.http import CLIENT_ERRORS, RetryPolicy, attempt_request


class WebhookPublisher:
    channel = "webhook"

    def __init__(self, url: str, *, token_env: str | None = None, policy: RetryPolicy = RetryPolicy(),
                 timeout: float = 30.0) -> None:
        self.url, self.token_env, self.policy, self.timeout = url, token_env, policy, timeout

    def publish(self, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """POST the proposal to the approved URL, which must still be the configured one."""
        url = payload["target"]
        if url != self.url:  # the configured token must not go to a URL the config no longer names
            raise PublishError(f"the action was approved for the webhook {url}, but `webhook_url` in [proposals] "
                               f"is now {self.url}; set it back to run the action (sending it elsewhere needs a "
                               "new approval)")
        headers = {"Idempotency-Key": idempotency_key}
        if self.token_env is not None:
            headers["Authorization"] = f"Bearer {channel_token(self.token_env, 'webhook_token_env')}"
        parameters = payload["parameters"]
        body = {"title": single_line(payload["title"]), "body": payload["body"], "target": url,
                "model": parameters["model"], "registry": parameters["registry"], "idempotency_key": idempotency_key}
        what = f"posting the proposal to the webhook {url}"
        with client(headers, self.timeout) as session:
            response = retried(lambda: attempt_request(session, "POST", url, what=what, ok_statuses=CLIENT_ERRORS,
                                                       json=body), what=what, policy=self.policy)
        if response.status_code in CLIENT_ERRORS:
            raise PublishError(f"{what}: {self._explain(response.status_code)} (HTTP {response.status_code}: "
                               f"{server_says(response)})")
        return {"url": url, "status": response.status_code,
                "already_published": response.headers.get("Idempotent-Replayed", "").lower() == "true"}

    def _explain(self, status: int) -> str:
        if status in (401, 403) and self.token_env is None:
            return ("the receiver wants credentials; put its token in an environment variable and name it with "
                    "`webhook_token_env` in [proposals]")
        if status in (401, 403):
            return f"the receiver refused the token in ${self.token_env}; put a valid one in it"
        if status in (404, 405, 410):
            return "nothing at this URL takes proposals; check `webhook_url` in [proposals]"
        return "the receiver refused the proposal"
