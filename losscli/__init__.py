"""losscli: a loss calculator and debugger for PyTorch users.

On the command line, ``losscli compute``, ``debug`` and ``compare``. In Python::

    import losscli
    report = losscli.check("cross-entropy", logits, target)   # a Report
    criterion = losscli.guard(torch.nn.CrossEntropyLoss())    # warns on the first call

``import losscli`` stays light: neither torch, pyarrow nor the API is imported until a name
of the API is first used (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# the Python API's names (losscli.api), imported on first use
_API = ("GuardedLoss", "LossMisuseError", "LossWarning", "Report", "check", "guard")
__all__ = ["__version__", *_API]

if TYPE_CHECKING:
    from losscli.api import GuardedLoss as GuardedLoss
    from losscli.api import LossMisuseError as LossMisuseError
    from losscli.api import LossWarning as LossWarning
    from losscli.api import Report as Report
    from losscli.api import check as check
    from losscli.api import guard as guard


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("losscli.api"), name)
    raise AttributeError(f"module 'losscli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
