"""GAIA experiments: evolution strategies on gymnasium control tasks and analytic objectives.

Entry point: ``run_all.py`` (see README.md). Map of the package:

- ``cli``         command line, params, output directory, SIGTERM handling, the run loop's glue
- ``params``      parameter specs (defaults, types, help) and GAIA_JOB_PARAMS validation
- ``envs``        the environments (gymnasium ids and the analytic objectives) and thresholds
- ``curriculum``  easier versions of each environment (difficulty 0..1) for curriculum_cma_es
- ``policy``      flat-vector numpy policies (MLP, neuromodulated plastic MLP), batched over
                  candidates and episodes
- ``evaluation``  fitness evaluation: analytic in-process, gymnasium through a process pool
- ``run``         the ``Run`` a method drives: evaluate, end of generation, budget, best-ever
- ``lines``       the GAIA stdout line format (writer) and a reference parser of the grammar
- ``methods``     one module per optimisation method, each with a ``run(run, params)`` function

Convention everywhere: fitness is maximised ("higher is better"). Analytic objectives report
the negated objective value, so their Best/Ever rise towards 0.
"""

__version__ = "0.1.0"
