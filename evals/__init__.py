"""The evaluation harness: suites, JSONL datasets, scorers, reports (arrives with the evals issue)."""
