"""ailedger.authority."""
