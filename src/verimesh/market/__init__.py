"""Markets: quality arenas where providers compete, validators score, consensus pays."""
