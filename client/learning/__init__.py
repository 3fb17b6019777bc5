"""The edge's learning family: examples, the training loop, and where the data comes from.

``behaviour`` builds examples with a fixed time split; ``loop`` is the one local training
loop (DP-SGD or plain SGD) and held-out evaluation; ``source`` is the ClientApp's data seam,
with ``store_source`` (an edge directory) and ``memory_source`` (simulated partitions);
``config`` maps the run config to the privacy room's settings.
"""
