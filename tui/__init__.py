"""The Textual review UI (`weightkeeper review`); only the CLI imports it (arrives with the review UI issue)."""
