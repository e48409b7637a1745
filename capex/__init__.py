"""capex: a capacity exchange for volunteers who share and learn skills."""

__version__ = "0.1.0"
