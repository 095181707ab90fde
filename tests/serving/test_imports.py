"""Every serving module imports on its own (no import cycle), and the config does not
drag the web stack in (settings and the CLI load without FastAPI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import leadscore.serving

SERVING = Path(leadscore.serving.__file__).parent
MODULES = sorted(
    "leadscore.serving."
    + ".".join(p.relative_to(SERVING).with_suffix("").parts).removesuffix(".__init__")
    for p in SERVING.rglob("*.py")
    if p.name != "__init__.py" or p.parent != SERVING
)


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_serving_modules_are_found():
    assert {
        "leadscore.serving.api",
        "leadscore.serving.auth",
        "leadscore.serving.config",
        "leadscore.serving.page",
        "leadscore.serving.store",
        "leadscore.serving.store.writer",
        "leadscore.serving.store.reader",
    } <= set(MODULES)


@pytest.mark.slow
def test_each_serving_module_imports_alone():
    """Each imported first, in its own fresh interpreter (all started at once): an import
    cycle would fail on a half-built module."""
    code = "import importlib, sys; importlib.import_module(sys.argv[1])"
    running = {
        module: subprocess.Popen(
            [sys.executable, "-c", code, module], stderr=subprocess.PIPE, text=True
        )
        for module in MODULES
    }
    failed = {}
    for module, process in running.items():
        _, err = process.communicate(timeout=300)
        if process.returncode != 0:
            failed[module] = err.strip().splitlines()[-1:]
    assert failed == {}


def test_config_and_settings_load_without_fastapi_or_sqlalchemy():
    out = _run(
        "import sys\n"
        "import leadscore.serving.config\n"
        "print('fastapi' in sys.modules, 'sqlalchemy' in sys.modules)\n"
        "import leadscore.pipelines.settings\n"
        "print('fastapi' in sys.modules)\n"
    )
    assert out.split() == ["False", "False", "False"]
