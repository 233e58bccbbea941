"""HTTP resources (SPEC 6): one small class per route, one responder per method."""
