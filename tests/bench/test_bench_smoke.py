"""`make bench` at toy size: the code path runs and its last line is the promised JSON.

Not a timed test (speed targets live in the benchmark's printed figures); it only pins
that the bench runs end to end on the real scoring path and reports every field.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench.run import FLOOR, STAGES, main

pytestmark = pytest.mark.slow


def test_bench_prints_one_json_line_with_every_stage(tmp_path, capsys):
    main(
        [
            "--leads",
            "1500",
            "--train-leads",
            "2500",
            "--partition-rows",
            "600",
            "--sample-leads",
            "300",
            "--out",
            str(tmp_path),
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["leads"] == 1500 and result["activities"] > 1500
    assert result["partitions"] == 3
    assert set(result["stages"]) == set(STAGES)
    assert all(v >= 0 for v in result["stages"].values())
    assert result["total_s"] > 0 and result["peak_rss_mb"] > 0
    floor = sum(result["stages"][k] for k in FLOOR)
    assert result["floor_s"] == pytest.approx(floor, abs=0.02)
    assert result["total_over_floor"] == pytest.approx(result["total_s"] / floor, rel=0.02)
    assert result["total_over_floor"] > 1  # the floor is part of the total
    # the run's CPU seconds and the wall they bound (at this size no writer process)
    assert result["cpu_s"] > 0 and result["children_cpu_s"] >= 0
    assert result["cpu_bound_s"] == pytest.approx(result["cpu_s"] / result["cores"], abs=0.1)
    # cpu_s is rounded to 0.1 s, cores_busy to 0.01: at this size (~1 s) that is ~5%
    rounding = 0.06 / result["total_s"] + 0.01
    assert result["cores_busy"] == pytest.approx(result["cpu_s"] / result["total_s"], abs=rounding)
    marks = result["cpu_marks_s"]
    assert 0 < marks["validated"] <= marks["predicted"] <= result["cpu_s"]
    assert "this much work needs >=" in "\n".join(lines)
    ratios = result["ratios"]
    assert ratios["explain_max_abs_diff"] <= 1e-6
    assert ratios["reasons_identical"] is True and ratios["features_agree"] is True
    for key in ("features_pandas_over_numpy", "explain_shap_over_fast"):
        assert ratios[key] > 0


def test_phases_bench_times_pass_two_and_the_publish_apart(tmp_path, capsys):
    """bench.phases: the same bench, pass 2 drained before the publish, both timed; the
    batch is still published whole (the bench's own check of n_rows ran)."""
    from bench.phases import main as phases

    args = ["--leads", "1200", "--train-leads", "2500", "--partition-rows", "400"]
    phases([*args, "--sample-leads", "200", "--out", str(tmp_path)])
    lines = capsys.readouterr().out.strip().splitlines()
    apart, result = json.loads(lines[-1]), json.loads(lines[-2])
    assert set(apart) == {"pass2_alone_s", "publish_alone_s"}
    assert apart["pass2_alone_s"] > 0 and apart["publish_alone_s"] > 0
    assert result["partitions"] == 3 and result["leads"] == 1200
    assert apart["pass2_alone_s"] + apart["publish_alone_s"] <= result["total_s"]


def test_oracle_gap_bench_prints_the_decomposition(tmp_path, capsys):
    """One CRM (the oracle-gap target is retired: one decomposition keeps the bench honest
    at a third of the cost of the three it used to run)."""
    from bench.oracle_gap import VARIANTS
    from bench.oracle_gap import main as oracle_gap

    oracle_gap(["--leads", "2500", "--seed", "3", "--out", str(tmp_path)])
    (result,) = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert result["seed"] == 3 and result["leads"] == 2500 and result["validation_rows"] > 200
    assert result["world"] == {}
    for name in VARIANTS:
        assert 0.5 < result[f"{name}_roc_auc"] < 1.0
        gap = result["oracle_roc_auc"] - result[f"{name}_roc_auc"]
        assert result[f"oracle_minus_{name}"] == pytest.approx(gap, abs=2e-4)
    assert result["oracle_minus_model"] > 0  # the bound is a bound
    knowable = result["knowable_roc_auc"]  # the bound given only the export
    assert 0.5 < knowable < 1.0
    assert result["oracle_minus_knowable"] == pytest.approx(
        result["oracle_roc_auc"] - knowable, abs=2e-4
    )
    assert result["knowable_minus_model"] == pytest.approx(
        knowable - result["model_roc_auc"], abs=2e-4
    )
    assert 0 <= result["hidden_traits_share_of_gap"] <= 1
    assert result["activity_rate_corr_hidden_interest"] > 0.5  # the count reads interest


def test_oracle_gap_world_overrides_reach_the_generator_and_are_undone(tmp_path):
    from bench.oracle_gap import main as oracle_gap
    from bench.oracle_gap import parse_world, world_overrides
    from leadscore.synthetic import generate_crm, world

    before = world.INTEREST_SD
    overrides = parse_world(["INTEREST_SD=0"])
    assert overrides == {"INTEREST_SD": 0.0}
    with world_overrides(overrides):
        truth = generate_crm(400, seed=3).truth
    assert before == world.INTEREST_SD  # undone
    # no interest noise: interest is the fit's share, exactly
    slope = world.INTEREST_FIT_SLOPE * truth["fit_logit"]
    assert np.allclose(truth["log_interest"], slope)
    noisy = generate_crm(400, seed=3).truth  # and with the noise back, it is not
    assert not np.allclose(noisy["log_interest"], world.INTEREST_FIT_SLOPE * noisy["fit_logit"])
    args = ["--leads", "2500", "--seed", "3", "--out", str(tmp_path)]
    for bad in ("INTEREST_SD", "interest_sd=1", "NOPE=1", "ACTIVITY_TYPES=1"):
        with pytest.raises(SystemExit, match="numeric generator constant"):
            oracle_gap([*args, "--world", bad])


def test_oracle_gap_observable_columns_equal_a_brute_force_over_the_log():
    from bench.oracle_gap import observable_columns
    from leadscore.synthetic import generate_crm, world

    crm = generate_crm(300, seed=4)
    leads, acts = crm.leads, crm.activities
    rng = np.random.default_rng(0)
    picked = leads.sample(200, random_state=1)
    age = pd.to_timedelta(rng.integers(0, 200, len(picked)), unit="D")
    X = pd.DataFrame({"lead_id": picked["lead_id"].to_numpy(), "as_of": picked["created_at"] + age})
    got = observable_columns(X, leads, acts)
    half_life = world.TRUE_HALF_LIFE_DAYS * 86400
    for i, (lead, as_of) in enumerate(zip(X["lead_id"], X["as_of"], strict=True)):
        mine = acts[(acts["lead_id"] == lead) & (acts["occurred_at"] < as_of)]
        seconds = (as_of - mine["occurred_at"]).dt.total_seconds().to_numpy()
        weights = mine["activity_type"].map(world.TRUE_WEIGHTS).fillna(0.0).to_numpy()
        engagement = float((weights * 0.5 ** (seconds / half_life)).sum())
        assert got["exact_engagement"][i] == pytest.approx(np.log1p(max(engagement, 0)), abs=1e-6)
        days = (as_of - leads.set_index("lead_id").loc[lead, "created_at"]).total_seconds() / 86400
        floor, tau = world.AGE_FLOOR, world.AGE_DECAY_DAYS
        expected = (
            world.BASE_ACTIVITY_RATE
            * (5 + 2 * world.WEEKEND_FACTOR)
            / 7
            * (floor * days + (1 - floor) * tau * (1 - np.exp(-days / tau)))
        )
        assert got["activity_rate"][i] == pytest.approx(np.log((len(mine) + 2) / (expected + 2)))


def test_bench_on_a_two_worker_dask_cluster_publishes_the_local_scores(tmp_path, capsys):
    """`--runner dask`: the partitions scored on a 2-process LocalCluster, in two passes,
    publish the same store rows and CSV as the same partitions scored in-process in one
    go; each partition's cost is reported per pass with the worker that ran it."""
    from leadscore.serving.store import ScoreStore, StoreConfig

    args = ["--leads", "1500", "--train-leads", "2500", "--partition-rows", "600"]
    main([*args, "--sample-leads", "300", "--out", str(tmp_path), "--runner", "dask"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["runner"] == "dask" and result["workers"] == 2
    assert result["dask_same_scores"] is True
    costs = result["per_partition"]  # each partition's two passes (pipelines/passes.py)
    assert [(c["pass"], c["partition"]) for c in costs] == [
        (1, 0),
        (1, 1),
        (1, 2),
        (2, 0),
        (2, 1),
        (2, 2),
    ]
    assert sum(c["leads"] for c in costs if c["pass"] == 2) == 1500
    assert all(c["worker"] != "local" and c["seconds"] > 0 for c in costs)
    assert 1 <= len(result["per_worker"]) <= 2
    assert sum(w["partitions"] for w in result["per_worker"].values()) == 3
    # the store holds both publications: the Dask batch and the local one, row for row
    store = ScoreStore(StoreConfig(url=f"sqlite:///{tmp_path / 'scores.db'}"))
    dask, local = (
        store.read_batch(b.batch_id).drop(columns=["batch_id", "scored_at"])
        for b in sorted(store.batches(), key=lambda b: b.created_at)
    )
    store.close()
    pd.testing.assert_frame_equal(dask, local)
    assert len(dask) == 1500


def test_same_published_blanks_only_the_batch_id(tmp_path):
    from bench.cluster import same_published

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("lead_id,batch_id,score\nL1,b-1,90\nL2,b-1,80\n")
    b.write_text("lead_id,batch_id,score\nL1,b-2,90\nL2,b-2,80\n")
    assert same_published(a, "b-1", b, "b-2")
    b.write_text("lead_id,batch_id,score\nL1,b-2,90\nL2,b-2,81\n")
    assert not same_published(a, "b-1", b, "b-2")
    b.write_text("lead_id,batch_id,score\nL1,b-2,90\n")  # a row short
    assert not same_published(a, "b-1", b, "b-2")
    assert not same_published(b, "b-2", a, "b-1")


def test_tree_rss_counts_child_processes():
    """The bench's peak with children sees a child's memory, which ru_maxrss does not."""
    import subprocess
    import sys

    from bench.memory import TreeRss, rss_now_mb

    tree = TreeRss(every=0.05)
    code = "import time; b = b'x' * (300 * 2**20); time.sleep(1.0)"  # 300 MB, written
    subprocess.run([sys.executable, "-c", code], check=True)
    assert tree.stop() >= rss_now_mb() + 250


def test_children_lists_grandchildren_and_forgets_the_dead():
    """The sampler's /proc walk finds a child's child, and nothing once both are gone."""
    import os
    import subprocess
    import sys
    import time

    from bench.memory import children

    code = (
        "import subprocess, sys; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
        "print(p.pid, flush=True); sys.stdin.read(); p.kill(); p.wait()"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    grandchild = int(parent.stdout.readline())
    assert {parent.pid, grandchild} <= set(children(os.getpid()))
    parent.communicate("")
    time.sleep(0.1)
    assert parent.pid not in children(os.getpid()) and grandchild not in children(os.getpid())
