"""Partners over httpx. Each adapter holds an `httpx.Client` it is given; sandboxes in the
same shape live in `core.adapters.sandbox` and are mounted with an httpx transport."""
