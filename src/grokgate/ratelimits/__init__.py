"""Plans and per-organisation rate limits (requests per minute/hour/day, concurrent jobs), on the `limits` package."""
