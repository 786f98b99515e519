"""registry-gate: predict registry manifest refusals before the push."""

__version__ = "0.1.0"
