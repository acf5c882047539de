"""Public re-export of the error tree (defined in the pure core)."""

from ailedger.core.errors import *  # noqa: F401,F403
from ailedger.core.errors import __all__  # noqa: F401
