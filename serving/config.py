"""The serving sections of leadscore.yaml: ``store:`` and ``api:``.

Plain pydantic, importing neither FastAPI nor SQLAlchemy, so the settings (and the CLI's
start) load without the web stack.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

TOKENS_ENV = "LEADSCORE_API_TOKENS"
PAGE_TOKENS_ENV = "LEADSCORE_PAGE_TOKENS"


class StoreConfig(BaseModel):
    """Where the scores store lives and how it is written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        default="sqlite:///data/scores.db",
        description="SQLAlchemy URL: a SQLite file by default, PostgreSQL by URL.",
    )
    keep_batches: int = Field(
        default=10,
        ge=1,
        description="Complete batches kept (current included); older ones are pruned.",
    )
    chunk_rows: int = Field(default=5000, ge=1, description="Rows per insert transaction.")
    sqlite_checkpoint_pages: int = Field(
        default=10_000,
        ge=1,
        description="SQLite files: WAL pages between automatic checkpoints (SQLite's default "
        "1,000 made checkpoints half the publish time; 10,000 pages = ~40 MB of WAL).",
    )
    stale_writing_hours: float = Field(
        default=24.0,
        gt=0,
        description="A batch still 'writing' this long after it started belongs to a run "
        "that died (e.g. killed): it is marked failed and its rows deleted at the next "
        "publish. Keep it well above the longest publish.",
    )


class ApiConfig(BaseModel):
    """The ``api:`` section of leadscore.yaml: who may call the API and where it listens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[str] = Field(
        default_factory=list,
        description="Bearer tokens for the API and the page; $LEADSCORE_API_TOKENS "
        "(comma separated) adds more. No token configured: every call but /healthz is 401.",
    )
    page_tokens: list[str] = Field(
        default_factory=list,
        description="Read-only tokens that open the sales-ops page only (not /v1); "
        "$LEADSCORE_PAGE_TOKENS adds more.",
    )
    host: str = Field(default="127.0.0.1", description="`leadscore serve` bind address.")
    port: int = Field(default=8000, ge=1, le=65535, description="`leadscore serve` port.")
    page_size: int = Field(default=100, ge=1, le=10_000, description="Default page size.")
    max_page_size: int = Field(default=1000, ge=1, le=100_000, description="Largest `limit`.")
    history_batches: int = Field(
        default=10, ge=1, le=1000, description="Batches of history per lead (max)."
    )
    max_body_bytes: int = Field(
        default=2_097_152,
        ge=1024,
        description="Largest request body (bytes): a larger Content-Length is answered 413 "
        "before anything is read or any token checked; a chunked body is cut off there. "
        "2 MiB holds a POST /v1/score with its 10,000 activities at most.",
    )
    session_hours: float = Field(
        default=8.0, gt=0, le=24 * 30, description="A page log-in lasts this long."
    )
    secure_cookies: bool = Field(
        default=False,
        description="Always mark the page cookie Secure (it is anyway over https, or when "
        "a trusted proxy says X-Forwarded-Proto: https).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (IPs or networks) whose X-Forwarded-For/-Proto are "
        "believed: the client's address (log-in throttling) and https (Secure cookie).",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to post the log-in form besides the server's own "
        "(scheme://host:port of the request), e.g. https://leads.example.com behind a "
        "proxy that rewrites Host.",
    )
    login_free_failures: int = Field(
        default=5, ge=1, le=1000, description="Failed log-ins per client before back-off."
    )
    login_backoff_seconds: float = Field(
        default=1.0, gt=0, description="First wait after those; doubles with each failure."
    )
    login_backoff_max_seconds: float = Field(
        default=900.0, gt=0, description="Longest wait between two log-in attempts."
    )


def _env_tokens(name: str) -> list[str]:
    return [t.strip() for t in os.environ.get(name, "").split(",") if t.strip()]


def api_tokens(config: ApiConfig) -> tuple[list[str], list[str]]:
    """(API tokens, page-only tokens): the config's plus the environment's."""
    api = [*config.tokens, *_env_tokens(TOKENS_ENV)]
    page = [*config.page_tokens, *_env_tokens(PAGE_TOKENS_ENV)]
    return api, page
