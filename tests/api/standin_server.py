"""A real gateway process for e2e tests whose pipeline is a stand-in (``RecordingClassifier``).

Everything else is production code: settings from the environment, ``create_app``, the
uvicorn ``DrainingServer`` and its SIGTERM handling. Run: ``python -m tests.api.standin_server
PORT DELAY_S``.
"""

from __future__ import annotations

import sys

from service.api import create_app
from service.api.logs import configure_logging
from service.api.server import run_server
from service.settings import Settings
from tests.api.helpers import RecordingClassifier


def main() -> int:
    port, delay_s = int(sys.argv[1]), float(sys.argv[2])
    settings = Settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    app = create_app(settings, classifier=RecordingClassifier(delay_s=delay_s))
    return run_server(app, "127.0.0.1", port).code


if __name__ == "__main__":
    sys.exit(main())
