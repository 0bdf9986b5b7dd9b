"""Benchmarks (``make bench``): every ``bench/bench_*.py`` module has a ``main()``; results go to
``bench/results/*.json``. See bench/README.md."""
