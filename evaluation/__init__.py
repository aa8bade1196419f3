"""twomountains: the "两山" conversion performance evaluation library (no Prefect imports)."""

__version__ = "0.1.0"
