"""Files → validated records; every problem reported with its row and column."""
