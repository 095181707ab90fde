"""Process environment for the stack, set before prefect, mlflow or shap are imported.

Defaults only (``setdefault``): a user's own environment always wins. Keeps Prefect's
local state and matplotlib's cache inside the project, gives Prefect's temporary server
time to start on a small machine, and turns telemetry off.
"""

from __future__ import annotations

import os

from pipelines.settings import Settings

EPHEMERAL_STARTUP_TIMEOUT_S = "90"


def prepare_environment(settings: Settings) -> None:
    home = settings.prefect.home
    defaults = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": EPHEMERAL_STARTUP_TIMEOUT_S,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MPLCONFIGDIR": str(home.parent / ".mplconfig"),
        "GX_ANALYTICS_ENABLED": "false",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
