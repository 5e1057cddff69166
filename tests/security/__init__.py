"""The security battery: one test per attack a hostile home network can try (docs/protocol.md §13)."""
