"""The Python API: losscli's checks on tensors in memory, in a notebook or a training loop.

- :func:`check`: one loss on tensors or arrays, as ``losscli compute`` on files: the same
  :class:`~losscli.report.Report` (value, findings with verified fixes, per-sample losses,
  gradients, ``to_dict()`` as the JSON contract, ``rich.print(report)`` as the table).
- :func:`guard`: a torch loss module or function that checks how it is called, on its
  first call and every ``check_every`` calls after, with :class:`LossWarning` (or
  :class:`LossMisuseError` when strict).

``import losscli`` loads none of this (nor torch): :mod:`losscli` imports it on first use.
"""

from losscli.api.checking import check
from losscli.api.guarding import GuardedLoss, LossMisuseError, LossWarning, guard
from losscli.report import Report

__all__ = ["GuardedLoss", "LossMisuseError", "LossWarning", "Report", "check", "guard"]
