-- drctl's catalog: an index of what the repositories hold, for history queries and
-- dashboards. Never the system of record: `drctl catalog sync` rebuilds it from the regions.
CREATE TABLE backups (
    job           text        NOT NULL,
    id            text        NOT NULL,
    consistent_at timestamptz NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    raw_bytes     bigint      NOT NULL,
    stored_bytes  bigint      NOT NULL,
    source_kind   text        NOT NULL,
    -- The manifest exactly as stored (nanosecond instants included).
    manifest      jsonb       NOT NULL,
    PRIMARY KEY (job, id)
);
CREATE INDEX backups_by_time ON backups (job, consistent_at);

-- One row per region holding a backup.
CREATE TABLE copies (
    job    text NOT NULL,
    id     text NOT NULL,
    region text NOT NULL,
    PRIMARY KEY (job, id, region),
    FOREIGN KEY (job, id) REFERENCES backups (job, id) ON DELETE CASCADE
);

-- The newest verification record of a backup in each region, as stored there.
CREATE TABLE verifications (
    job             text             NOT NULL,
    id              text             NOT NULL,
    region          text             NOT NULL,
    finished_at     timestamptz      NOT NULL,
    level           text             NOT NULL,
    passed          boolean          NOT NULL,
    restore_seconds double precision,
    record          jsonb            NOT NULL,
    PRIMARY KEY (job, id, region)
);
