"""Store tests: the contract every store meets, and each store's own tests."""
