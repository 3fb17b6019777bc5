"""Persistence and rules, one module per aggregate; every function is keyword-only."""
