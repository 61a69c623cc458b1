"""One module per stage. Agents stay thin: decode the event, call pure code, emit."""
