"""Lead scoring: feature frames (polars), CatBoost training, and what builds on them."""
