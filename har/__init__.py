"""har-lab."""
