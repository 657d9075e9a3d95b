"""People who sign in: customer members of organisations (and, later, operators), their passwords, sessions,
CSRF tokens, invitations and login throttling. Passwords, sessions and CSRF know nothing of customers."""
