"""`nst report`: a static HTML page of a run (counts, throughput, failures, plots, contact sheet)."""
