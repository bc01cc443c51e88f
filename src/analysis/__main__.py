"""Command line: python -m analysis {sample,run,site,validate} ...

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())

__all__ = []
