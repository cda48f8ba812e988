"""Every piece of I/O weightkeeper does: registries, and later the archive, publishing, memory and the LLM."""
