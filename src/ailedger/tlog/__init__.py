"""ailedger.tlog."""
