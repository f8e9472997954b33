-- Up Migration
-- Edit and retry, and resolve by hand (docs/operator-control.md).
--
-- generation: how many times an edit rewound the run (undid and re-ran completed steps). A step
--   executed after a rewind gets the idempotency key `<run>:<idx>:g<generation>`, so a step
--   re-run after its undo is a new effect, not the undone one found again by its old key.
-- rewind: an edit's undo waiting for the executor: {"fromIdx", "previousInput"}. The executor
--   replays the run with its previous input to find the undo of the completed steps from
--   `fromIdx` on, runs it, forgets those steps, and clears this.
-- rewinds: the first forgotten step of each rewind, in order (the k-th for generation k): a step's
--   effect was made in the generation of the last rewind that forgot it, which names its undo's key.
-- held: the failed step whose failure held the run's undo (the step allows a resolution by a
--   person): {"idx", "name", "kind", "byHand", "skip", "giveUp"}. Cleared by Retry, Edit and
--   retry, Resolve by hand, Skip and compensate, and Give up.
ALTER TABLE tollgate.runs
  ADD COLUMN generation integer NOT NULL DEFAULT 0,
  ADD COLUMN rewind jsonb,
  ADD COLUMN rewinds integer[] NOT NULL DEFAULT '{}',
  ADD COLUMN held jsonb;

-- Down Migration
ALTER TABLE tollgate.runs DROP COLUMN held, DROP COLUMN rewinds, DROP COLUMN rewind, DROP COLUMN generation;
