"""Credits: the price table and the append-only ledger every credit movement is written to."""
