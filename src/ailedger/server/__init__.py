"""ailedger.server."""
