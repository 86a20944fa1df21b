"""pgstore."""
