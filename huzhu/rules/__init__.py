"""The benefit engine: plan files, benefit computation, explanations (RULES.md §1, §3–§5).

Pure Python (with NumPy/Polars for the batch path); no Django import anywhere in this package, so
that the same code prices a one-stop settlement in a request, a batch file on the command line and
a property test.

Public entry points:
- ``huzhu.rules.plan``: ``Plan``, ``PlanVersions``, ``load_plan_file``, ``load_plan_text``,
  ``parse_plan``, ``PlanError``;
- ``huzhu.rules.engine``: ``settle``, ``cancel``, ``YearState``, ``MemberInfo``, ``Settlement``,
  ``Result``, ``route``, ``compute_base``;
- ``huzhu.rules.explain``: ``render_explanation`` (Chinese sentences);
- ``huzhu.rules.lumpsum``: critical illness and maternity;
- ``huzhu.rules.adjudicate``: the file-based batch (``huzhu adjudicate``).
"""
