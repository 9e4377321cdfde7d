"""GitHub side: event payload models, routing, rendering and the check run."""
