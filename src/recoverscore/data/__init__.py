"""Data in and out: file contracts, reading and writing tables, debt facts, fee schedules and
the synthetic world."""
