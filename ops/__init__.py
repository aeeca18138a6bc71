"""Operator tools: the view of every request and the replay of poisoned messages
(`python -m ops`, docs/operations.md). Not deployed (.funcignore)."""
