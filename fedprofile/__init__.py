"""fedprofile umbrella package: only the command-line entry point lives here."""

__all__: list[str] = []
