"""Pure processing engines: arrays and scalars in, frozen results out (no files, database or
broker)."""
