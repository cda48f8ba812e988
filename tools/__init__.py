"""Every piece of I/O weightkeeper does: registries, the archive, publishing, memory and the LLM."""

import os

# weightkeeper talks only to the registries and channels it is configured with. huggingface_hub's telemetry
# would name the installed torch and any AI agent detected in the environment in every request's user
# agent, and detecting one asks huggingface.co for its list of agents at each start, whatever endpoint is
# configured. Off unless the user turns it on; huggingface_hub reads the variable when first imported,
# which the adapters and channels that use it do only after this runs.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
