"""The "prove it" half, experiment side: ``coreselect compare`` runs select -> fine-tune ->
evaluate for every arm of a YAML config (:mod:`.config`), cached and resumable (:mod:`.run`;
each arm's train + evaluate in this process, local processes or Ray tasks: :mod:`.units`,
:mod:`.ray_units`), and writes the tables and plots (:mod:`.report`)."""
