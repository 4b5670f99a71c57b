"""Read models built from the event log. Each can be dropped and rebuilt from the log."""
