"""`make bench-routing` at toy size: the scale part runs route() end to end, one JSON line."""

from __future__ import annotations

import json

from bench.routing import main


def test_bench_routing_prints_the_scale_result_as_one_json_line(tmp_path, capsys):
    main(["--leads", "3000", "--reps", "20", "--store", str(tmp_path / "none.db")])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    scale = result["scale"]
    assert "demo" not in result  # no demo store: that part is skipped, said on stderr
    assert scale["leads"] == 3000 and scale["reps"] == 20
    assert 0 < scale["assigned"] <= scale["capacity"]
    assert scale["verdict"] == "pass" and "HiGHS" in scale["solver"]
