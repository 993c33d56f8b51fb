"""Repository functions: keyword-only, and they never commit (the caller owns the transaction)."""
