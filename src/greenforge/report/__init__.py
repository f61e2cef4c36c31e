"""Report: the run store (SQLite) and, later, exporters (HTML, model cards, MLflow, W&B)."""

from __future__ import annotations

from greenforge.report.store import RunStore, aggregate_parts, default_store_path, export_records

__all__ = ["RunStore", "aggregate_parts", "default_store_path", "export_records"]
