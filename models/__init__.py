"""The data: SQLModel tables and the query functions over them, one module per domain."""
