"""Mixed-traffic load against live relays: the fault matrix in tests/reliability and `make soak`."""
