"""Examples written from Protean's documentation, as a Protean user writes them: only
the import lines name pgstore. Run by tests/acceptance/test_protean_docs.py."""
