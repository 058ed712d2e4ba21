-- V0005: an hour that ended before the last full hour, once folded into the hourly figures, is kept as
-- one row: its rounds and every domain's allocation rows as blobs of changes (Store/Chunk.swift), about a
-- tenth of their size as rows; the rows themselves are removed. Hours with shadow targets stay rows
-- (the shadow comparison reads them). `thinned`: retention has kept only its snapshots.
CREATE TABLE compact_hours (
    hour            INTEGER PRIMARY KEY,
    first_round     INTEGER NOT NULL,
    last_round      INTEGER NOT NULL CHECK (last_round >= first_round),
    round_count     INTEGER NOT NULL CHECK (round_count > 0),
    row_count       INTEGER NOT NULL CHECK (row_count >= 0),
    thinned         INTEGER NOT NULL DEFAULT 0 CHECK (thinned IN (0, 1)),
    rounds          BLOB    NOT NULL,
    allocations     BLOB    NOT NULL
);
