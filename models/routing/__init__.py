"""Distribution: which rep calls which lead today (issue #18, docs/routing.md).

Pure: plain functions over a frame of the leads to route (the *pool*) and the reps of
``routing.reps``; no Prefect, MLflow or store. ``route`` is the one entry point.
"""
