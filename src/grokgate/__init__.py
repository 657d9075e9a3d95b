"""grokgate: a self-hosted, credit-billed gateway for xAI Grok Imagine."""

__version__ = "0.1.0"
