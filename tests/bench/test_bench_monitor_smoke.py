"""`make bench-monitor` at toy size: every stage runs and the last line is the promised JSON.

Not a timed test (the <30 s / <2 GB target lives in the benchmark's printed verdict); it
pins that the bench runs the real monitoring functions end to end and catches the shift
it injects (a lead source the reference never had, on 5% of the batch).
"""

from __future__ import annotations

import json

import pytest

from bench.monitor import main

pytestmark = pytest.mark.slow


def test_bench_monitor_prints_its_stages_and_one_json_line(tmp_path, capsys):
    main(["--leads", "3000", "--train-leads", "1500", "--out", str(tmp_path)])
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["leads"] == 3000 and result["features"] > 40
    assert set(result["stages"]) == {
        "reference",
        "batch_counts",
        "drift",
        "labels",
        "performance",
        "estimate",
        "monitor()",
    }
    assert result["verdict"] == "pass"
    assert "PSI of lead_source" in result["decision"]
    assert 0.5 < result["estimated_roc_auc"] < 1
