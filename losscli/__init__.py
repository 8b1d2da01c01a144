"""losscli: a command-line loss calculator and debugger for PyTorch users."""

__version__ = "0.1.0"
