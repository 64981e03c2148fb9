"""Interpretability techniques on the hooked transformer (layer 4)."""
