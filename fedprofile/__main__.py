"""Allow ``python -m fedprofile``."""

from fedprofile.cli import main

raise SystemExit(main())
