"""The decision service: routing, batch triggers, Art. 24 self-service, experiments and KPIs.

Workflows live here; routes stay thin in ``server.api.routes.decisions``; tables are in
``server.tables.decision`` and ``server.tables.experiment_outcome``. Rules are data and are
evaluated by the pure evaluator ``models.decisions`` on exactly the fields a profile read for
the rule's purpose would return (``server.profiles.visible``).
"""
