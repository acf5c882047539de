"""HTTP API of a ledger (Starlette app; ``ailedger serve``). See docs/api.md."""

from ailedger.http.app import ServeConfig, app_from_env, create_app

__all__ = ["ServeConfig", "app_from_env", "create_app"]
