"""The edge that talks to xAI: one small interface, the real xAI client, and the sandbox that stands in for it."""
