"""har-lab: human-activity-recognition experiments at scale."""

__version__ = "0.1.0"
