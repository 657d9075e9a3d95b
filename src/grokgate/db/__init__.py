"""Database plumbing shared by every domain: the engine, the declarative base and the migrations runner."""
