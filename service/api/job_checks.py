"""Submit-time checks of a batch job: refuse what could never succeed, with the item index.

An item whose URL is malformed or names a forbidden IP literal, or a job naming a model this
gateway does not serve, is refused before anything is queued (as ``callback_url`` is), rather
than accepted with 202 and failed later item by item. Names are not resolved here (10,000
DNS lookups per submit would be a denial of service of its own); ``fetch_url`` resolves and
checks again when the item runs.
"""

from __future__ import annotations

from fastapi import Request

from service.errors import FetchError
from service.media.fetch import precheck_url
from service.queue.schemas import JobCreate


def check_submission(request: Request, body: JobCreate) -> None:
    services = getattr(request.app.state, "services", None)
    if services is None:  # a bare jobs router (tests): nothing to check against
        return
    if body.model is not None:
        services.registry.get(body.model)  # model_not_found unless it is served
    policy = services.settings.fetch_policy()
    for index, item in enumerate(body.items):
        try:
            precheck_url(item.url, policy)
        except FetchError as e:
            raise FetchError(f"items[{index}].url: {e.message}", code=e.code) from None
