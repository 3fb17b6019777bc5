"""The HTTP API: dependencies, exception handlers and one router module per resource."""
