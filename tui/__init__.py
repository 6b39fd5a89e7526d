"""Chrysopedia: a terminal RAG chat for music producers."""

__version__ = "0.1.0"
