"""The scheduler every front end shares: event-driven, async + threads, retries, timeouts."""
