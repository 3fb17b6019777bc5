"""The edge's side of the decision layer: contact outcomes reported as arm totals."""
