"""The command line (`dangliang …`): one module per command group, registered on the group in
`main`; each parses, calls the application and prints. Nothing else."""
