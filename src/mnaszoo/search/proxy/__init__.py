"""Accuracy: the short-training proxy, the data it trains on, and finalize."""
