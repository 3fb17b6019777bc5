"""The compliance officer's console: server-rendered pages over the crud and audit layers.

Pages are Jinja2 templates rendered by :mod:`server.console.routes`, behind a login that
turns a named officer token into a signed session cookie (:mod:`server.console.session`).
Every label comes from the message catalogue in :mod:`server.console.i18n` (Chinese and
English). Queries are aggregates and keyset pages (:mod:`server.console.queries`), so pages
stay fast on large tables.
"""
