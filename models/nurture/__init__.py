"""Nurture lists: leads wanted but not ready, and the step that would move them (issue #18).

Pure: no Prefect, MLflow or store.
"""
