-- V0003: a round that reports started and that changed nothing (no row, no alert, the same phase) is not
-- recorded; the next recorded round counts those before it, so a report can still say how many rounds
-- ran (and, with the phase of the round recorded before them, in which phase).
ALTER TABLE rounds ADD COLUMN quiet_before INTEGER NOT NULL DEFAULT 0 CHECK (quiet_before >= 0);
