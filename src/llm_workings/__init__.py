"""LLM Workings: a hands-on lab for seeing how language models work inside."""

__version__ = "0.1.0"
