"""Closed loop: published scores against what happened, and the data drifting under them.

Pure functions over frames (no Prefect, no MLflow, no store): the monitor flow
(``pipelines/monitor_flow.py``) reads the archived batches and the outcomes, calls
:func:`~leadscore.models.monitor.run.monitor`, and records what it returns.

Modules: :mod:`config` (the ``monitor:`` section), :mod:`profile` (reference profile of
the training rows and per-batch bin counts), :mod:`drift` (PSI and friends),
:mod:`outcomes` (labels of a past batch, with censoring), :mod:`performance` (live
ROC-AUC, calibration per grade and band, capture, model vs rules), :mod:`estimate`
(expected ROC-AUC before outcomes arrive), :mod:`decide` (retrain or not, and why),
:mod:`run` (all of it for every archived batch), :mod:`result` (what comes out).
"""
