-- V0002: which policy decided each round (`[daemon] policy`), and what the shadow policies
-- (`[daemon] shadow`) would have set from the same inputs: never pushed, only recorded.
ALTER TABLE rounds ADD COLUMN policy TEXT NOT NULL DEFAULT 'arbiter';
-- The shadow policies that decided in the round, comma-separated ('' for none): a shadow's recorded
-- target holds only across rounds in which it ran.
ALTER TABLE rounds ADD COLUMN shadows TEXT NOT NULL DEFAULT '';

-- A shadow's target for a domain, recorded in a full snapshot and whenever it moves by more than the
-- deadband from the one last recorded (between rows it holds).
CREATE TABLE shadow_targets (
    round_id   INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    domain_id  INTEGER NOT NULL REFERENCES domains (id),
    policy     TEXT    NOT NULL,
    target_kib INTEGER NOT NULL CHECK (target_kib > 0),
    reason     TEXT    NOT NULL,
    PRIMARY KEY (round_id, domain_id, policy)
) WITHOUT ROWID;
CREATE INDEX shadow_targets_domain ON shadow_targets (domain_id, round_id);
