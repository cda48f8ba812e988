"""Every piece of I/O weightkeeper does: registries, the archive, publishing, memory and the LLM."""
