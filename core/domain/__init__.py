"""Pure rules: standard library, numpy for vectors, and core.money / core.errors. No I/O."""
