"""The DC paper's applications of condensed sets: class-incremental learning (continual) and architecture search (nas)."""
