"""The fault harness: real store and podium processes, a TCP fault proxy between them, a ledger."""
