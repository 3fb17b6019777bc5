"""PII recognizers, one per module; :mod:`..registry` creates them by name."""
