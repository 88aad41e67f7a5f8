"""The "prove it" half, model side: fine-tune on a pick (:mod:`.train`, TRL SFT with a
response-only loss from :mod:`.trainer` and :mod:`.tokenloss`) and evaluate the result
(:mod:`.evaluate`: held-out response loss; :mod:`.lm_tasks`: offline lm-evaluation-harness tasks).

Importing this package imports no torch; each module imports what it needs when it runs.
"""
