"""The pipeline around the services: the watcher that finds movies and registers them
(:mod:`.watcher`, with :mod:`.grid_scan` for the atlas, grid squares and foil holes), the runs
and their requests (:mod:`.runs`, :mod:`.requests`), and :mod:`.runtime`, which starts the
watcher, the workers and the reconciler together (``cryolive run``, ``cryolive demo``).

It sits above :mod:`cryolive.services` (one service per stage) and below the web and the
command line (docs/architecture.md).
"""
