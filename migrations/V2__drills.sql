-- Drill runs, as published to drills/<playbook>/<run-id>/ in the repository.
CREATE TABLE drills (
    playbook    text             NOT NULL,
    run_id      text             NOT NULL,
    started_at  timestamptz      NOT NULL,
    finished_at timestamptz      NOT NULL,
    rto_seconds double precision,
    rpo_seconds double precision,
    aborted     text,
    -- report.json exactly as stored.
    report      jsonb            NOT NULL,
    PRIMARY KEY (playbook, run_id)
);
CREATE INDEX drills_by_time ON drills (playbook, started_at);

CREATE TABLE drill_copies (
    playbook text NOT NULL,
    run_id   text NOT NULL,
    region   text NOT NULL,
    PRIMARY KEY (playbook, run_id, region),
    FOREIGN KEY (playbook, run_id) REFERENCES drills (playbook, run_id) ON DELETE CASCADE
);
