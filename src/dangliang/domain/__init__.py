"""The pure model: aggregates, events, value objects and errors. No I/O, no clock."""
