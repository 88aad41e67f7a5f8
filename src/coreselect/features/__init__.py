"""Feature extractors: model activations and hidden states (and text embeddings)."""
