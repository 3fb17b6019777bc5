"""What the demo's model is measured against, per edge: the oracle and the best simple model.

For each channel edge, on exactly the held-out subjects the edge evaluated the global model
on (same cutoff, same label window, same pseudonym-hash split):

* **oracle AUC**: the generator knows every user's latent purchase rate on every channel
  (``simulations.oracle``), so it gives the Bayes-optimal score of "purchases on this
  channel in the label window"; no model can do better on these labels;
* **best non-private baseline**: logistic regression, gradient boosting and BG/NBD fitted
  centrally, without noise, on the pooled training examples of all edges
  (``simulations.baselines``); the best of the three on each edge's held-out subjects.

Only the demo, which generated the data and holds the tenant key, can compute these; a
deployed server never could.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from client import EdgeStore
from client.identity import IdentityResolver
from client.learning.store_source import BehaviourSplit, behaviour_examples
from client.schemas import CustomerRef
from models import RunConfig
from models.learners import binary_auc
from privacy import Pseudonymizer, load_key_file

from .baseline_settings import feature_matrix, repeat_purchase_history
from .baselines.bgnbd import fit_bgnbd, probability_of_purchase
from .baselines.tabular import gradient_boosting_scores, logistic_regression_scores
from .oracle import oracle_probabilities
from .synthetic import PopulationConfig, make_users

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeReference:
    """Reference AUCs of one edge's held-out subjects.

    Parameters
    ----------
    held_out, positives : int
        Held-out subjects and how many of them purchased in the window.
    oracle_auc : float
        The Bayes-optimal AUC (latent rates).
    baseline_auc : float
        The best non-private baseline's AUC.
    baseline : str
        Which baseline that was (``logreg``, ``gbdt`` or ``bgnbd``).
    """

    held_out: int
    positives: int
    oracle_auc: float
    baseline_auc: float
    baseline: str


def edge_references(
    *,
    edge_dirs: dict[str, Path],
    key_path: Path,
    population: PopulationConfig,
    config: RunConfig,
    at: datetime,
    seed: int,
) -> dict[str, EdgeReference]:
    """Return each channel edge's oracle and best-baseline AUC on its held-out subjects.

    Parameters
    ----------
    edge_dirs : dict[str, Path]
        Channel name to edge directory.
    key_path : Path
        The tenant key file (maps generated identifiers to the edges' pseudonyms).
    population : PopulationConfig
        The generated population.
    config : RunConfig
        The run config the federation used (cutoff, window, held-out share).
    at : datetime
        The round time (consent is evaluated at it).
    seed : int
        Seed of the baselines.

    Returns
    -------
    dict[str, EdgeReference]
        Per channel.
    """
    splits: dict[str, BehaviourSplit] = {}
    for channel, edge_dir in edge_dirs.items():
        with EdgeStore.for_edge_dir(edge_dir) as store:
            splits[channel] = behaviour_examples(store, config=config, at=at)
    train_x, train_y = feature_matrix([e for s in splits.values() for e in s.train])
    cutoff = next(iter(splits.values())).cutoff
    window = config.label_window_days
    # Fit each baseline once on the pooled training examples and score every edge's
    # held-out subjects in one pass; the rows are then sliced per edge.
    test_x, test_y = feature_matrix([e for s in splits.values() for e in s.holdout])
    x, recency, age = repeat_purchase_history(train_x)
    bgnbd = fit_bgnbd(frequency=x, recency=recency, T=age)
    x, recency, age = repeat_purchase_history(test_x)
    pooled_scores = {
        "logreg": logistic_regression_scores(train_x, train_y, test_x, seed=seed),
        "gbdt": gradient_boosting_scores(train_x, train_y, test_x, seed=seed),
        "bgnbd": probability_of_purchase(bgnbd, t=window, frequency=x, recency=recency, T=age),
    }
    resolver = IdentityResolver(Pseudonymizer(load_key_file(key_path)))
    users = make_users(population)

    def pseudonym_of(customer: dict[str, str]) -> str | None:
        return resolver.resolve(CustomerRef.model_validate(customer)).subject

    out: dict[str, EdgeReference] = {}
    start = 0
    for channel, split in splits.items():
        rows = slice(start, start + len(split.holdout))
        start = rows.stop
        labels = test_y[rows]
        if len(labels) == 0:
            continue
        aucs = {name: binary_auc(labels == 1, s[rows]) for name, s in pooled_scores.items()}
        best = max(aucs, key=lambda name: aucs[name])
        oracle = oracle_probabilities(
            users,
            population,
            pseudonym_of=pseudonym_of,
            start=cutoff,
            end=cutoff + timedelta(days=window),
            channels=[channel],
        )
        known = [oracle.get(e.subject, 0.0) for e in split.holdout]
        out[channel] = EdgeReference(
            held_out=len(labels),
            positives=int(labels.sum()),
            oracle_auc=binary_auc(labels == 1, np.array(known)),
            baseline_auc=aucs[best],
            baseline=best,
        )
    return out
