"""Operations: the services the pipeline runs on, started, checked and stopped on one machine.

Not part of the pipeline itself (``flows/`` is): this package supervises processes.

- :mod:`stack.commands`   the services' command lines (Prefect server and worker, Dask scheduler and
                          worker, ``make deploy``), declared once for ``up``, the tests and
                          ``docker/compose.yaml``
- :mod:`stack.postgres`   a PostgreSQL cluster of our own (initdb, start, health, stop)
- :mod:`stack.local`      the whole stack on 127.0.0.1 as a unit: ``python -m stack up|down|status``
- :mod:`stack.temporary`  a temporary Prefect server (the demo, ``python -m flows``, benchmarks)

Imports: ``stack`` uses the library's errors and file helpers (``cstrack``) and nothing else of the
project; ``flows``, ``bench`` and the tests may import it, ``cstrack``, ``catalog`` and ``tasks`` never
do (``tests/test_imports.py``).
"""
