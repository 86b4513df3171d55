"""The scale layer: many episodes at once.

- ``matrix``: an evaluation matrix (agents x tasks x seeds) planned into cells and run by
  ``run_eval``; ``executors`` runs each cell in a worker process of its own (local or Ray),
  ``rows`` builds the cell's results-store row, ``progress`` shows the run in the terminal;
- ``store``: the SQLite results store (one row per cell, every try an attempt);
- ``pool``: ``EnvPool``, async episodes under limits on live sandboxes and experiments;
- ``server`` (with ``sessions`` and ``routes``): episodes over HTTP (``mlsbench serve``), and
  ``client``: ``RemoteEnv``, the gymnasium env that drives them.
"""
