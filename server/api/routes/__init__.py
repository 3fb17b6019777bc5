"""One router module per resource; :mod:`server.api.routes.api` mounts them under /api/v1."""
