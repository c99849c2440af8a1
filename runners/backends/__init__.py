"""One module per hardware platform behind the interface of runners.backends.base."""
