"""The bounds on credit amounts and balances, and the check every movement makes against them.

Balances and ledger amounts are INTEGER columns: PostgreSQL refuses a value past 2,147,483,647, and SQLite turns
an integer that overflows into a float that no later charge reduces exactly. `MAX_CREDITS` (10^9, ten million
USD at the default credit price) is what a balance may reach by grants; a refund is never refused (it gives back
a charge), so a balance exceeds the bound only by the charges of jobs still running, and `MAX_PRICE` keeps that
headroom (1.1 * 10^9) for over a thousand jobs at the highest price, seven million at the seed's video price.
"""

from __future__ import annotations

from grokgate.catalogue.catalogue import MAX_CREDITS_PER_REQUEST
from grokgate.errors import ApiError

MAX_CREDITS = 10**9
"""Most credits one grant may give, and most a balance may hold after it."""
MAX_PRICE = MAX_CREDITS_PER_REQUEST
"""Most credits one job may cost: the catalogue's bound on a price rule, which GROKGATE_PRICES obeys too."""


def checked(amount: int, field: str = "credits", *, allow_zero: bool = False, most: int = MAX_CREDITS) -> int:
    """`amount` if it is an int within 1 (or 0) ..`most`, else a 400 naming `field`."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        problem = "must be an integer"
    elif amount < 0 or (amount == 0 and not allow_zero):
        problem = "must not be negative" if allow_zero else "must be a positive integer"
    elif amount > most:
        problem = f"must be at most {most}"
    else:
        return amount
    raise ApiError(400, "INVALID_INPUT", f"{field}: {problem}", {"field": field})
