"""ailedger.anchoring."""
