"""Services: load state, call the pure core, record the result in one transaction."""
