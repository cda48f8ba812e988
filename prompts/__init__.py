"""Prompt templates as versioned text files beside this module, loaded by name (arrives with the agents issue)."""
