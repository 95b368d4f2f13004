"""Integrations with other libraries: ``openai`` and LangChain (optional extras)."""
