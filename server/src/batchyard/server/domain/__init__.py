"""The pure core: dataclasses, validation, state transitions, page tokens. No I/O."""
