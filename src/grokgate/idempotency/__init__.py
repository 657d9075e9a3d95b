"""`Idempotency-Key`: a POST that costs credits runs once per key; repeats get the first answer back."""
