"""fraud_app: payment fraud detection and case review on a local DuckDB file."""

__version__ = "0.1.0"
