"""The graph: one module per domain (strawberry types + resolvers), assembled in schema.py."""
