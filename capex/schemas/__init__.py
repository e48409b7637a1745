"""Pydantic v2 schemas of the JSON API: ``XCreate``, ``XUpdate``, ``XRead``."""
