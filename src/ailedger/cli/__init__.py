"""The ``ailedger`` command (``ailedger.cli.main:main``). Its public interface is the command line itself,
documented in docs/cli.md, not Python names: the modules here are the commands of each capability."""

__all__: list[str] = []
