-- V0001: the decision store. Times are Unix seconds (REAL); memory is KiB (INTEGER).

-- Every domain the arbiter has seen. Xen reuses domids, so a domain is a (domid, name, first_seen)
-- lifetime with a surrogate id; `released` is set when Xen releases it.
CREATE TABLE domains (
    id          INTEGER PRIMARY KEY,
    domid       INTEGER NOT NULL CHECK (domid >= 0 AND domid < 32752),
    name        TEXT    NOT NULL,
    uuid        TEXT,
    first_seen  REAL    NOT NULL,
    last_seen   REAL    NOT NULL CHECK (last_seen >= first_seen),
    released    REAL
);
CREATE INDEX domains_live ON domains (domid) WHERE released IS NULL;
CREATE INDEX domains_name ON domains (name);

-- One row per decision round.
CREATE TABLE rounds (
    id             INTEGER PRIMARY KEY,
    at             REAL    NOT NULL,
    trigger        TEXT    NOT NULL CHECK (trigger IN ('startup', 'report', 'tick', 'admin', 'shutdown')),
    host_total_kib INTEGER NOT NULL CHECK (host_total_kib >= 0),
    host_free_kib  INTEGER NOT NULL CHECK (host_free_kib >= 0),
    reserve_kib    INTEGER NOT NULL CHECK (reserve_kib >= 0),
    budget_kib     INTEGER NOT NULL CHECK (budget_kib >= 0),
    phase          TEXT    NOT NULL CHECK (phase IN ('uncontended', 'contended', 'infeasible')),
    -- 1: every domain is recorded in `allocations`; 0: only those whose decision changed.
    full_snapshot  INTEGER NOT NULL CHECK (full_snapshot IN (0, 1))
);
CREATE INDEX rounds_at ON rounds (at);

-- Per-domain inputs and outputs of a round: the facts `explain` and the reports read.
CREATE TABLE allocations (
    round_id            INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    domain_id           INTEGER NOT NULL REFERENCES domains (id),
    report_status       TEXT    NOT NULL CHECK (report_status IN ('fresh', 'stale', 'none', 'rejected')),
    working_set_kib     INTEGER,
    stall               REAL    CHECK (stall IS NULL OR (stall >= 0 AND stall <= 1)),
    floor_kib           INTEGER NOT NULL CHECK (floor_kib >= 0),
    floor_kind          TEXT    NOT NULL,
    ceiling_kib         INTEGER NOT NULL CHECK (ceiling_kib >= floor_kib),
    weight              REAL    NOT NULL CHECK (weight > 0),
    demand_kib          INTEGER NOT NULL,
    allocation_kib      INTEGER NOT NULL CHECK (allocation_kib >= floor_kib),
    basis               TEXT    NOT NULL,
    actual_kib          INTEGER NOT NULL CHECK (actual_kib >= 0),
    previous_target_kib INTEGER NOT NULL,
    target_kib          INTEGER NOT NULL CHECK (target_kib > 0),
    reason              TEXT    NOT NULL,
    paced               INTEGER NOT NULL CHECK (paced IN (0, 1)),
    -- Actuation: NULL when nothing was pushed (no change, or a dry run), 1 pushed, 0 failed with push_error.
    pushed              INTEGER CHECK (pushed IS NULL OR pushed IN (0, 1)),
    push_error          TEXT,
    PRIMARY KEY (round_id, domain_id)
) WITHOUT ROWID;
CREATE INDEX allocations_domain ON allocations (domain_id, round_id);

-- Guest reports refused, with the stable code and the reason.
CREATE TABLE rejections (
    id        INTEGER PRIMARY KEY,
    domain_id INTEGER NOT NULL REFERENCES domains (id),
    at        REAL    NOT NULL,
    code      TEXT    NOT NULL,
    reason    TEXT    NOT NULL
);
CREATE INDEX rejections_domain ON rejections (domain_id, at);

CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY,
    round_id      INTEGER REFERENCES rounds (id) ON DELETE SET NULL,
    at            REAL    NOT NULL,
    kind          TEXT    NOT NULL,
    shortfall_kib INTEGER,
    message       TEXT    NOT NULL
);
CREATE INDEX alerts_at ON alerts (at);

-- Per-domain admin settings (`arbiter set`), by domain name so they survive a reboot's new domid.
CREATE TABLE domain_settings (
    name        TEXT PRIMARY KEY,
    floor_kib   INTEGER CHECK (floor_kib IS NULL OR floor_kib > 0),
    ceiling_kib INTEGER CHECK (ceiling_kib IS NULL OR ceiling_kib > 0),
    weight      REAL    CHECK (weight IS NULL OR weight > 0),
    updated_at  REAL    NOT NULL,
    CHECK (floor_kib IS NULL OR ceiling_kib IS NULL OR floor_kib <= ceiling_kib)
);

-- Who changed what, when.
CREATE TABLE admin_actions (
    id      INTEGER PRIMARY KEY,
    at      REAL NOT NULL,
    who     TEXT NOT NULL,
    action  TEXT NOT NULL,
    detail  TEXT NOT NULL
);

-- Every config load and reload, accepted or refused.
CREATE TABLE config_changes (
    id       INTEGER PRIMARY KEY,
    at       REAL    NOT NULL,
    source   TEXT    NOT NULL,
    accepted INTEGER NOT NULL CHECK (accepted IN (0, 1)),
    detail   TEXT    NOT NULL
);
