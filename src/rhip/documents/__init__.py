"""Shared documents: CDA R2 (WS/T 483, WS/T 500) in and out, and the document registry and repository (MHD)."""
