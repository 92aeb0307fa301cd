"""What route handlers need, as typed ``Annotated`` dependencies.

``create_app`` keeps metrics, lifecycle, the temp-file budget and (once the lifespan started)
the services (settings included) and the job service on ``app.state``; the admission
middleware sets the request's deadline, the API-key middleware its principal. Handlers name
what they use below instead of reading ``request.app.state`` and casting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from service.api.lifecycle import Lifecycle
from service.api.tmp_budget import TmpBudget
from service.errors import AvserveError
from service.metrics import Metrics
from service.queue import JobService
from service.queue.backend import ANONYMOUS
from service.registry import ModelRegistry
from service.wiring import Services

T = TypeVar("T")


def _services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise AvserveError("models are still loading", code="not_ready")
    return services


def _registry(services: Annotated[Services, Depends(_services)]) -> ModelRegistry:
    return services.registry


def _jobs(request: Request) -> JobService:
    jobs: JobService | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise AvserveError("batch jobs are not available on this server", code="not_ready")
    return jobs


def _app_state(name: str, kind: type[T]) -> Callable[[Request], T]:
    """A dependency returning ``app.state.<name>``, checked to be a ``kind``."""

    def get(request: Request) -> T:
        value = getattr(request.app.state, name)
        if not isinstance(value, kind):
            raise TypeError(f"app.state.{name} is {type(value).__name__}, not {kind.__name__}")
        return value

    return get


def _deadline(request: Request) -> float:
    """Absolute ``time.monotonic()`` deadline of this request (set by the admission middleware)."""
    deadline: float = request.state.deadline
    return deadline


def _principal(request: Request) -> str:
    """The caller's key id (set by the API-key middleware); jobs are scoped to it."""
    return str(getattr(request.state, "principal", ANONYMOUS))


ServicesDep = Annotated[Services, Depends(_services)]
RegistryDep = Annotated[ModelRegistry, Depends(_registry)]
JobsDep = Annotated[JobService, Depends(_jobs)]
MetricsDep = Annotated[Metrics, Depends(_app_state("metrics", Metrics))]
LifecycleDep = Annotated[Lifecycle, Depends(_app_state("lifecycle", Lifecycle))]
TmpBudgetDep = Annotated[TmpBudget, Depends(_app_state("tmp_budget", TmpBudget))]
DeadlineDep = Annotated[float, Depends(_deadline)]
PrincipalDep = Annotated[str, Depends(_principal)]
