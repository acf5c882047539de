"""ailedger.governance."""
