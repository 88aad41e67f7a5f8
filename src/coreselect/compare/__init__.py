"""The "prove it" half, experiment side: ``coreselect compare`` runs select -> fine-tune ->
evaluate for every arm of a YAML config (:mod:`.config`), cached and resumable (:mod:`.run`),
and writes the tables and plots (:mod:`.report`)."""
