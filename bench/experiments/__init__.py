"""Finished experiments, kept runnable: what they measured, and the figures, are in
docs/performance.md. Not part of ``make bench``; nothing here may import a
private (``_``) name of kvserver.

* :mod:`bench.experiments.bigvalue` -- one huge value through SET and GET
  (time, peak RSS, another client's worst PING), kvserver or redis-server;
* :mod:`bench.experiments.bitmap_costs` -- what one bitmap or LCS command
  costs on a big value, in process.
"""
