"""The compare tests train the tiny models of the fine-tuning tests."""

from __future__ import annotations

from finetune.conftest import alpaca_file, records, tiny_alpaca_model, tiny_model  # noqa: F401
