"""ailedger.encoding."""
