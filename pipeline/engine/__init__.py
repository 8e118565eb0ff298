"""Objectives, optimisers and the one render loop every method uses."""
