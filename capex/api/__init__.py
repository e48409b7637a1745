"""The JSON front door."""
