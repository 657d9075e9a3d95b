"""Generation jobs: validation, submission, the durable video poller and the HTTP routes."""
