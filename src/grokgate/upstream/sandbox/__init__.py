"""A stand-in for xAI's media API that speaks the same REST protocol, renders real media, and fails on request.

It lets a new user's first run, the test suite and the benchmark work with no xAI key and no network. Behaviour
is steered by markers in the prompt (see `scenarios.py`), so a test drives every path over real HTTP.
"""
