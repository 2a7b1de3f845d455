"""What the notebooks import: sizes, progress, artifacts, tables, figures, the status panel,
read-only views of the running cluster, the commands a participant runs (``commands``), benchmark
summaries computed from data (``bench_summary``), the fault demo's search loop (``faults``), the
jupytext pairing of notebook sources (``pairs``) and ``make lab`` (``jupyter``). The lab's services
are started and stopped by ``labkit.lab``, never here."""
