"""Backbones, their weights, preprocessing and layer names."""
