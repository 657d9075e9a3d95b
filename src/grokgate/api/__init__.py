"""The HTTP application: the app factory, the error translation, and the shared request plumbing."""
