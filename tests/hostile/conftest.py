"""The hostile-input corpus: every case asserts its typed error or status, that the process
keeps serving, and that stored data is unchanged (docs/reliability.md and docs/reliability/ table
them)."""
