"""Latency: measuring networks, and the two predictors behind one interface."""
