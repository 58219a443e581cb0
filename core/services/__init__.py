"""Use cases. Each receives what it needs (catalog source, calendar, clock) from bootstrap."""
