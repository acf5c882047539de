"""ailedger.content."""
