"""Regression runs: the record of one `labkit run`, its metrics, comparisons between runs and the report.

``record``: what a run appends to the history (parameters, versions, machine, every metric);
``metrics``: the direction and kind of each metric, by key pattern (the one place comparisons ask);
``compare``: verdicts better / same within noise / worse; ``report``: markdown and HTML with trends;
``html``: the executed notebooks rendered by nbconvert, with an index page.
"""
