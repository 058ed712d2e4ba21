-- V0004: hourly figures, so a report over weeks reads one row per domain and hour instead of every
-- recorded decision. The retention pass folds each ended hour in (before downsampling thins it, so the
-- figures stay those of every decision); `rollup.until_round` is the last round folded in: rounds after
-- it (an hour not yet ended, or a round recorded late into an hour already folded, after the wall clock
-- went back) are read from `rounds` and `allocations`.
CREATE TABLE rollup (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    until_round INTEGER NOT NULL
);

-- Per domain and hour (Unix seconds / 3600): the rows recorded, the target changes among them, the
-- largest stall, the least and most target, the sum of the actual sizes (for the mean), the most ceiling.
CREATE TABLE hourly (
    domain_id       INTEGER NOT NULL REFERENCES domains (id),
    hour            INTEGER NOT NULL,
    rows            INTEGER NOT NULL CHECK (rows > 0),
    changes         INTEGER NOT NULL CHECK (changes >= 0),
    max_stall       REAL,
    min_target_kib  INTEGER NOT NULL,
    max_target_kib  INTEGER NOT NULL,
    sum_actual_kib  INTEGER NOT NULL,
    max_ceiling_kib INTEGER NOT NULL,
    PRIMARY KEY (domain_id, hour)
) WITHOUT ROWID;

-- Per hour, the host: rounds recorded, rounds run (with the quiet ones each recorded round counts
-- before it), rounds run in each phase (a quiet round ran in the phase of the round recorded before it),
-- the least and summed Xen free memory over the recorded rounds, the most host total, the first and
-- last round's time.
CREATE TABLE hourly_host (
    hour        INTEGER PRIMARY KEY,
    recorded    INTEGER NOT NULL CHECK (recorded > 0),
    ran         INTEGER NOT NULL,
    uncontended INTEGER NOT NULL,
    contended   INTEGER NOT NULL,
    infeasible  INTEGER NOT NULL,
    min_free_kib INTEGER NOT NULL,
    sum_free_kib INTEGER NOT NULL,
    max_total_kib INTEGER NOT NULL,
    first_at    REAL NOT NULL,
    last_at     REAL NOT NULL
);
