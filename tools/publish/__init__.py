"""Where an approved proposal is published. Every publisher takes the approved payload and the claim's
idempotency key, and publishing the same key twice publishes once."""
