"""What the notebooks import: sizes, progress, artifacts, tables, figures, the status panel, and
read-only views of the running cluster. Nothing here starts or stops a service."""
