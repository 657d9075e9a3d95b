"""People who sign in: customer members of organisations and operators of the business, their passwords, sessions,
CSRF tokens, invitations and login throttling. Passwords, sessions and CSRF know nothing of customers."""
