"""Durable results: every image and video is copied from xAI's temporary URL into our own storage and served from
there, with signed expiring links, byte ranges, and a retention sweeper."""
