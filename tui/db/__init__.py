"""The data layer: models, engine, schema and knowledge-base import. Never imports textual."""
