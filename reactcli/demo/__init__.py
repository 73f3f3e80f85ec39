"""The end-to-end demo (``reactcli demo``, what ``make demo`` runs) and its report.

:mod:`.run` chains the stages on the synthetic corpus; :mod:`.report` writes ``report.html`` and
``report.md`` from what the run collected."""

from reactcli.demo.run import DEMO_STAGES, DemoConfig, load_demo_recipe, poster_frame, quick_config, run_demo

__all__ = ["DEMO_STAGES", "DemoConfig", "load_demo_recipe", "poster_frame", "quick_config", "run_demo"]
