"""Feature services: one module per feature, each taking its collaborators in its constructor
and subscribing its own handlers to the bus."""
