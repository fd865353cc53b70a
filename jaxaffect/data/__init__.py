"""Input data: dataset layouts, synthetic corpora and grain pipelines."""
