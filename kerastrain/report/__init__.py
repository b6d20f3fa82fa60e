"""The run report (`report.html`) and the comparison of finished runs.

`kerastrain.report.write_report(path)` writes a finished run's page;
`kerastrain.report.compare.compare_runs(paths)` draws and tabulates several runs.
"""

from kerastrain.report.page import build_report, learning_rates, write_report

__all__ = ["build_report", "learning_rates", "write_report"]
