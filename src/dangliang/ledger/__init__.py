"""The event log: the store every fact is appended to (`eventlog`) and the batched append that
imports millions of service records (`bulk`)."""
