"""The orchestration-only sections of the settings: synthetic data, tracking, outputs,
Prefect and the score flow's runner (``pipelines.settings`` composes them)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticConfig(_Strict):
    """Defaults of `leadscore generate` and `leadscore demo`."""

    leads: int = Field(default=20_000, gt=0)
    seed: int = 42
    out_dir: Path = Path("data/synthetic")


class TrackingConfig(_Strict):
    """MLflow tracking store and model registry."""

    tracking_uri: str = "sqlite:///mlflow.db"
    artifact_location: Path = Path("mlartifacts")
    experiment: str = "leadscore"
    model_name: str = "leadscore"
    champion_alias: str = "champion"
    monitor_experiment: str = Field(
        default="leadscore-monitoring", description="MLflow experiment of the monitor's runs."
    )


class OutputConfig(_Strict):
    """Local outputs of a scoring run besides the store."""

    scores_csv: Path = Path("data/scores/latest.csv")
    quarantine_csv: Path = Path("data/scores/quarantine.csv")
    report_dir: Path = Field(
        default=Path("reports"),
        description="Evaluation reports of training runs: <run_id>.html and latest.html.",
    )
    csv_bom: bool = Field(
        default=False,
        description="Start scores_csv with a UTF-8 byte-order mark, so that Excel opens "
        "its accents right (HubSpot and Salesforce import either).",
    )
    calls_csv: Path = Field(
        default=Path("data/scores/calls.csv"),
        description="Today's call list of every rep, and the leads no rep could take.",
    )
    nurture_csv: Path = Field(
        default=Path("data/scores/nurture.csv"),
        description="The nurture list with each lead's next step, for a marketing-automation "
        "import.",
    )
    demo_page_token: Path = Field(
        default=Path("data/demo-page-token"),
        description="`leadscore demo` keeps a page token here (made once; data/ is not "
        "committed) and ends by printing how to serve the page and log in with it.",
    )


class PrefectConfig(_Strict):
    """Where Prefect keeps its local state when no API server is configured."""

    home: Path = Path(".prefect")


class RunnerConfig(_Strict):
    """Where the score flow runs its partitions (docs/architecture.md §9)."""

    kind: Literal["local", "dask"] = Field(
        default="local", description="local: threads in this process; dask: a Dask cluster."
    )
    address: str | None = Field(
        default=None, description="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (dask)."
    )
    local_workers: int = Field(default=1, ge=1, description="Partitions scored at once (local).")
    finish_workers: int = Field(
        default=1,
        ge=1,
        description="Partitions finished at once in the second pass (local). 2 holds a "
        "second partition (~200-300 MB at 62,500 rows: 10M leads then peaked at 2,066 MiB "
        "with the SQLite writer) and, since partitions are handed to the publisher in "
        "memory, wins nothing at 1M (42.9 s, as with 1).",
    )
    max_in_flight: int = Field(
        default=2, ge=1, description="Partitions being scored at once per pass (bounds memory)."
    )
    spill_dir: Path | None = Field(
        default=None,
        description="Folder where scored partitions wait for their global rank (Arrow "
        "files, removed after the run); None = the system's temporary folder. A Dask "
        "cluster on several machines needs a folder every worker and the flow share.",
    )

    @model_validator(mode="after")
    def _dask_address(self) -> RunnerConfig:
        if self.kind == "dask" and not self.address:
            raise ValueError("runner.kind dask needs runner.address (the scheduler)")
        return self
