"""weightkeeper: keeps fine-tuned models from vanishing unnoticed."""

__version__ = "0.1.0"
