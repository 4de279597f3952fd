"""Feature services: each module registers its handlers with the router."""
