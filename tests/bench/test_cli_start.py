"""`python -m bench.cli_start`: the CLI start-time figures and their ratio to the target.

Not a timed test: it pins what the bench reports, not how fast this machine is.
"""

from __future__ import annotations

import json

from bench.cli_start import TARGET_S, main


def test_cli_start_prints_both_figures_and_the_ratio_to_the_target(capsys):
    main(["--runs", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["runs"] == 1 and result["target_s"] == TARGET_S == 0.5
    assert result["help_s"] > 0 and result["settings_import_s"] > 0
    assert result["help_over_target"] == round(result["help_s"] / TARGET_S, 3)
    assert lines[0].startswith(f"leadscore --help: {result['help_s']:.3f} s (median of 1)")
    assert lines[1] == f"import leadscore.pipelines.settings: {result['settings_import_s']:.3f} s"
