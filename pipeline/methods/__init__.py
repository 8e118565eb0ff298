"""The algorithms, one module per method: pure functions of tensors and a backbone, no files."""
