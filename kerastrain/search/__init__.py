"""Hyperparameter search (`--tune`) and optimizer studies."""
