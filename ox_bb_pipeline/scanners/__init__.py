"""Scanners: one module per tool or check family, all yielding the same Finding rows."""
