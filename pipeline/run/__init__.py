"""Planning, leases, resume and execution of dataset runs."""
