"""Computations at a log position: the inputs gathered from the read models and run through the
pure rule pipelines of `dangliang.policy` (institution compensation, performance pay)."""
