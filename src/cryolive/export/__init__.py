"""Exports of processed results for other programs (RELION)."""
