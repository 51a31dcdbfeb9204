"""Turns trained keras_lstm models into deployable files (filled by issue 3)."""

__all__ = []
