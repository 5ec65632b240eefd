"""Generators as Flax NNX modules whose parameter paths mirror the original networks' names."""
