"""The gateway's URL layout, set in one place.

Routes declare these full path templates, and the pure-ASGI middleware, which sees a request
before any routing, recognises work and probe paths by the same names. (Full templates rather
than router prefixes: FastAPI keeps an included route's own, un-prefixed path in
``scope["route"]``, which the request metrics use as their ``route`` label.)
"""

from __future__ import annotations

V1 = "/v1"  # the versioned work API (API key required when keys are configured)
V2 = "/v2"  # Open Inference Protocol health paths (always open)
METRICS = "/metrics"

CLASSIFY = f"{V1}/classify"
MODELS = f"{V1}/models"
JOBS = f"{V1}/jobs"
HEALTH = f"{V2}/health"
MODEL_READY = f"{V2}/models/{{name}}/ready"
