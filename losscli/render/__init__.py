"""Renderers: pure functions from a Report to text or a Rich renderable; only cli.py prints."""
