"""Merged profiles: one view per subject over every edge's contributions (issue 12).

Edges contribute fields per channel (``server.tables.profile_field``: one row per edge);
this capability merges them by the catalogue's rules, re-derives cross-channel tags and
serves purpose-bound, consent-checked reads with an optional per-channel breakdown.
"""
