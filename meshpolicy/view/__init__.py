"""Pictures of the access graph: `meshpolicy graph` and the pictures of `meshpolicy diff` (docs/graph.md)."""
