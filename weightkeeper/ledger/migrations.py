"""The ledger schema, as an ordered list of migrations. This is the only place that defines it.

A migration is never edited once released; a change is a new migration.
Events are append-only: triggers refuse UPDATE and DELETE on them, and an INSERT that would replace one.
"""

from __future__ import annotations

import sqlite3

from weightkeeper.errors import LedgerError
from weightkeeper.ledger.database import Connection, PostgresConnection
from weightkeeper.ledger.notices import CHANNEL

MIGRATIONS: tuple[str, ...] = (
    # 1: registries, scans, models, observations, events
    """
    CREATE TABLE registries (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        location TEXT NOT NULL,
        created_at TEXT NOT NULL
    );

    CREATE TABLE scans (
        id INTEGER PRIMARY KEY,
        registry_id INTEGER NOT NULL REFERENCES registries(id),
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed', 'interrupted')),
        phase TEXT NOT NULL CHECK (phase IN ('listing', 'resolving', 'done')),
        cursor TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        pages INTEGER NOT NULL DEFAULT 0,
        models_seen INTEGER NOT NULL DEFAULT 0,
        problems INTEGER NOT NULL DEFAULT 0,
        error TEXT
    );
    CREATE INDEX scans_by_registry ON scans(registry_id, status);

    CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        registry_id INTEGER NOT NULL REFERENCES registries(id),
        name TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('present', 'suspected_missing', 'deleted')),
        visibility TEXT NOT NULL,
        digest INTEGER NOT NULL,
        last_observation_id INTEGER NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,  -- when an observation or, once it went missing, the last complete scan saw it
        UNIQUE (registry_id, name)
    );
    CREATE INDEX models_by_key ON models(registry_id, key);
    -- A scan recognises an unchanged model by one probe of this small integer index.
    CREATE INDEX models_present_digest ON models(registry_id, digest) WHERE state = 'present';
    CREATE INDEX models_by_state ON models(registry_id, state);

    -- What a registry said about a model at one moment. `found` = 0 is a direct
    -- lookup that answered "gone"; such a row carries the name and nothing else.
    CREATE TABLE observations (
        id INTEGER PRIMARY KEY,
        model_id INTEGER NOT NULL REFERENCES models(id),
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        observed_at TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('listing', 'lookup')),
        found INTEGER NOT NULL,
        name TEXT NOT NULL,
        key TEXT,
        revision TEXT,
        created_at TEXT,
        last_modified TEXT,
        visibility TEXT,
        downloads INTEGER,
        likes INTEGER,
        card_digest TEXT,
        license TEXT,
        emissions TEXT,
        training TEXT,
        datasets TEXT,
        shutdown_date TEXT,
        successor TEXT,
        extra TEXT,
        lookup_detail TEXT,
        digest INTEGER
    );
    CREATE INDEX observations_by_model ON observations(model_id);

    CREATE TABLE observation_lineage (
        observation_id INTEGER NOT NULL REFERENCES observations(id),
        base_model TEXT NOT NULL,
        relation TEXT
    );
    CREATE INDEX lineage_by_observation ON observation_lineage(observation_id);
    CREATE INDEX lineage_by_base ON observation_lineage(base_model);

    CREATE TABLE observation_files (
        observation_id INTEGER NOT NULL REFERENCES observations(id),
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT
    );
    CREATE INDEX files_by_observation ON observation_files(observation_id);

    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        registry_id INTEGER NOT NULL REFERENCES registries(id),
        model_id INTEGER REFERENCES models(id),
        scan_id INTEGER REFERENCES scans(id),
        observation_id INTEGER REFERENCES observations(id),
        prior_observation_id INTEGER REFERENCES observations(id),
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_by_model ON events(model_id);
    CREATE INDEX events_by_kind ON events(kind, at);
    CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'ledger events are append-only: record a correction as a new event'); END;
    CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'ledger events are append-only: record a correction as a new event'); END;

    -- Bad input met during a scan: recorded, never fatal to the other models.
    CREATE TABLE problems (
        id INTEGER PRIMARY KEY,
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        at TEXT NOT NULL,
        model_name TEXT,
        message TEXT NOT NULL
    );
    CREATE INDEX problems_by_scan ON problems(scan_id);

    -- What an unfinished scan has listed so far: per page, the JSON array of the listed models'
    -- digests, committed with the page. Emptied when the scan completes.
    CREATE TABLE scan_pages (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        page INTEGER NOT NULL,
        digests TEXT NOT NULL,
        PRIMARY KEY (scan_id, page)
    );

    -- Names of one scan that wait for the complete listing: possible renames (same key, new name).
    CREATE TABLE deferred_records (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        name TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (scan_id, name)
    ) WITHOUT ROWID;

    -- Cache so a file's sha256 is computed once per change, not once per scan.
    CREATE TABLE file_digests (
        registry_id INTEGER NOT NULL REFERENCES registries(id),
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        stamp TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (registry_id, path)
    ) WITHOUT ROWID;
    """,
    # 2: indexes a rescan reads and writes less. An index of every model's state took a random write
    # for each model that went missing; a scan only ever asks for the suspects. Events by scan
    # make a scan's summary a range read instead of a walk over every event.
    """
    DROP INDEX models_by_state;
    -- The state column makes the index covering: a probe never reads the table row.
    DROP INDEX models_present_digest;
    CREATE INDEX models_present ON models(registry_id, digest, state) WHERE state = 'present';
    CREATE INDEX models_suspected ON models(registry_id) WHERE state = 'suspected_missing';
    CREATE INDEX events_by_scan ON events(scan_id);

    -- What an unfinished scan has listed so far, as the ids of the known models each committed page
    -- showed (a JSON array per page). It replaces scan_pages' digests: an unfinished scan lists again
    -- from the start, which repeats no event, since what it wrote already matches.
    UPDATE scans SET phase = 'listing', cursor = NULL, pages = 0, models_seen = 0 WHERE phase != 'done';
    DROP TABLE scan_pages;
    CREATE TABLE scan_listed (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        part INTEGER NOT NULL,
        model_ids TEXT NOT NULL,
        PRIMARY KEY (scan_id, part)
    );
    """,
    # 3: what adapters keep between scans (a Hub model's file list at its revision), and the lease
    # that keeps two processes (`watch`, `scan`) from scanning one registry at once.
    """
    CREATE TABLE scan_leases (
        registry_id INTEGER PRIMARY KEY REFERENCES registries(id),
        holder TEXT NOT NULL,      -- host:pid:random of the process scanning
        expires_at REAL NOT NULL   -- unix time; renewed while the scan runs, free once past
    );
    CREATE TABLE adapter_cache (
        registry_id INTEGER NOT NULL REFERENCES registries(id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (registry_id, key)
    ) WITHOUT ROWID;
    """,
    # 4: the review queue, approvals and executions. A proposal is a LangGraph thread waiting at its
    # review interrupt; the queue row is how a human finds it (checkpointers cannot list interrupts).
    # Approvals and executions are append-only like events: a decision is never rewritten.
    """
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY,
        thread_id TEXT NOT NULL,
        interrupt_id TEXT NOT NULL,
        registry_id INTEGER NOT NULL REFERENCES registries(id),
        model_id INTEGER NOT NULL REFERENCES models(id),
        event_id INTEGER NOT NULL REFERENCES events(id),
        recipient TEXT NOT NULL,   -- the owner (Hub author or org) the proposal is addressed to
        priority REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'deferred', 'executed')),
        version INTEGER NOT NULL DEFAULT 1,   -- raised by every edit; an approval names the version it saw
        draft TEXT NOT NULL,       -- JSON: weightkeeper.proposals.Draft
        evidence TEXT NOT NULL,    -- JSON: weightkeeper.proposals.Evidence
        findings TEXT NOT NULL,    -- JSON: the critic's findings for the reviewer
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (thread_id, interrupt_id)
    );
    CREATE INDEX reviews_by_status ON reviews(status, priority);
    CREATE INDEX reviews_by_model ON reviews(model_id, status);
    CREATE INDEX reviews_by_recipient ON reviews(recipient, created_at);

    -- Written only by a human review channel (weightkeeper.review.HumanReviewer): the decision, who made it,
    -- and for an approval the sha256 of the exact action payload, signed with the home's approval key.
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        review_id INTEGER NOT NULL REFERENCES reviews(id),
        version INTEGER NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject', 'defer', 'edit')),
        action_index INTEGER,
        payload_sha256 TEXT,
        reviewer TEXT NOT NULL,
        channel TEXT NOT NULL CHECK (channel IN ('cli', 'tui')),
        reason TEXT,
        decided_at TEXT NOT NULL,
        signature TEXT NOT NULL
    );
    CREATE INDEX decisions_by_review ON decisions(review_id);

    -- One row per approved action the executor claimed: the UNIQUE approval makes the claim atomic and once.
    CREATE TABLE executions (
        id INTEGER PRIMARY KEY,
        decision_id INTEGER NOT NULL UNIQUE REFERENCES decisions(id),
        idempotency_key TEXT NOT NULL UNIQUE,
        claimed_at TEXT NOT NULL
    );
    CREATE TABLE execution_results (
        execution_id INTEGER PRIMARY KEY REFERENCES executions(id),
        finished_at TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('done', 'failed')),
        detail TEXT NOT NULL
    );

    -- Owners who asked not to be contacted, and why; honoured before any draft.
    CREATE TABLE contact_blocks (
        owner TEXT PRIMARY KEY,
        reason TEXT,
        blocked_at TEXT NOT NULL,
        blocked_by TEXT NOT NULL
    ) WITHOUT ROWID;
    """ + "".join(
        f"""
    CREATE TRIGGER {table}_are_append_only_update BEFORE UPDATE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} are append-only: record a new row instead'); END;
    CREATE TRIGGER {table}_are_append_only_delete BEFORE DELETE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} are append-only: record a new row instead'); END;
    """ for table in ("decisions", "executions", "execution_results")),
    # 5: near-duplicate models grouped into one proposal. A member's event is covered by its lead's review:
    # no proposal of its own is drafted for it.
    """
    CREATE TABLE review_members (
        event_id INTEGER PRIMARY KEY REFERENCES events(id),
        review_id INTEGER NOT NULL REFERENCES reviews(id),
        model_id INTEGER NOT NULL REFERENCES models(id),
        similarity REAL NOT NULL   -- cosine similarity of the two models' case texts (tools/memory.py)
    );
    CREATE INDEX review_members_by_model ON review_members(model_id);
    CREATE INDEX review_members_by_review ON review_members(review_id);
    """,
    # 6: no index of present models' digests. Digests are random, so a first scan inserted each model at a
    # random place in it, a third of its ledger writes; a scan finds a listed model by its name instead
    # (an index the ledger keeps anyway) and compares the digest in its row.
    """
    DROP INDEX models_present;
    """,
    # 7: a model may be `withdrawn`: out of the watcher's view, deleted or hidden, the registry does not say
    # which. SQLite cannot change a CHECK constraint in place: the table is rebuilt (its documented way, with
    # foreign keys off and checked before the commit, see `migrate`), ids and rows unchanged.
    """
    CREATE TABLE models_rebuilt (
        id INTEGER PRIMARY KEY,
        registry_id INTEGER NOT NULL REFERENCES registries(id),
        name TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('present', 'suspected_missing', 'withdrawn', 'deleted')),
        visibility TEXT NOT NULL,
        digest INTEGER NOT NULL,
        last_observation_id INTEGER NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,  -- when an observation or, once it went missing, the last complete scan saw it
        UNIQUE (registry_id, name)
    );
    INSERT INTO models_rebuilt SELECT id, registry_id, name, key, state, visibility, digest, last_observation_id,
        first_seen, last_seen FROM models;
    DROP TABLE models;
    ALTER TABLE models_rebuilt RENAME TO models;
    CREATE INDEX models_by_key ON models(registry_id, key);
    CREATE INDEX models_suspected ON models(registry_id) WHERE state = 'suspected_missing';
    -- A withdrawn model is asked about on every scan: seen again, or confirmed gone.
    CREATE INDEX models_withdrawn ON models(registry_id) WHERE state = 'withdrawn';
    """,
    # 8: approvals that cannot be replayed, raced or revived (README "The approval invariant"). Reviewers sign
    # with Ed25519 keys of their own; the ledger holds their public keys, each endorsed by a reviewer before
    # it (the first by itself). A decision names the overridden critic errors and the signature of the
    # review's previous decision, so a removed, reordered or rewritten decision breaks the chain; decisions
    # signed before (an HMAC with a key in the home) keep their rows but carry no authority. One approval per
    # (review, version, action). An execution runs under a lease. INSERT OR REPLACE deletes the row it
    # replaces without firing DELETE triggers: BEFORE INSERT triggers refuse any insert that would replace.
    """
    CREATE TABLE reviewers (
        name TEXT PRIMARY KEY,
        public_key TEXT NOT NULL UNIQUE,   -- Ed25519, hex
        added_by TEXT NOT NULL,            -- the endorsing reviewer; the first reviewer endorses itself
        added_at TEXT NOT NULL,
        signature TEXT NOT NULL            -- by added_by's key, over (name, public_key, added_by, added_at)
    );

    CREATE TABLE decisions_rebuilt (
        id INTEGER PRIMARY KEY,
        review_id INTEGER NOT NULL REFERENCES reviews(id),
        version INTEGER NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject', 'defer', 'edit')),
        action_index INTEGER,
        payload_sha256 TEXT,
        reviewer TEXT NOT NULL,
        channel TEXT NOT NULL CHECK (channel IN ('cli', 'tui', 'demo')),
        reason TEXT,
        overrides TEXT NOT NULL DEFAULT '[]',  -- JSON: the ids of the critic errors the approval overrides
        previous TEXT NOT NULL DEFAULT '',     -- the signature of the review's previous decision
        scheme TEXT NOT NULL DEFAULT 'ed25519' CHECK (scheme IN ('ed25519', 'hmac-sha256')),
        decided_at TEXT NOT NULL,
        signature TEXT NOT NULL
    );
    INSERT INTO decisions_rebuilt (id, review_id, version, decision, action_index, payload_sha256, reviewer, channel,
        reason, scheme, decided_at, signature)
        SELECT id, review_id, version, decision, action_index, payload_sha256, reviewer, channel, reason,
        'hmac-sha256', decided_at, signature FROM decisions;
    DROP TABLE decisions;
    ALTER TABLE decisions_rebuilt RENAME TO decisions;
    CREATE INDEX decisions_by_review ON decisions(review_id);
    CREATE UNIQUE INDEX one_approval_per_action ON decisions(review_id, version, action_index)
        WHERE decision = 'approve' AND scheme = 'ed25519';
    -- Nothing approved under the old scheme runs: it waits for a signed decision.
    UPDATE reviews SET status = 'pending' WHERE status = 'approved';

    CREATE TABLE execution_leases (
        idempotency_key TEXT PRIMARY KEY,
        holder TEXT NOT NULL,      -- host:pid:random of the executor running it
        expires_at REAL NOT NULL   -- unix time; renewed while it runs, free once past
    );
    """ + "".join(
        f"""
    CREATE TRIGGER {table}_are_append_only_update BEFORE UPDATE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} are append-only: record a new row instead'); END;
    CREATE TRIGGER {table}_are_append_only_delete BEFORE DELETE ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} are append-only: record a new row instead'); END;
    """ for table in ("decisions", "reviewers")) + "".join(
        f"""
    CREATE TRIGGER {table}_are_never_replaced BEFORE INSERT ON {table} WHEN {clash}
        BEGIN SELECT RAISE(ABORT, '{table} are append-only: this insert would replace a row'); END;
    """ for table, clash in (
            ("events", "EXISTS (SELECT 1 FROM events WHERE id = NEW.id)"),
            ("decisions", "EXISTS (SELECT 1 FROM decisions WHERE id = NEW.id OR (NEW.decision = 'approve'"
                          " AND NEW.scheme = 'ed25519' AND decision = 'approve' AND scheme = 'ed25519'"
                          " AND review_id = NEW.review_id AND version = NEW.version"
                          " AND action_index = NEW.action_index))"),
            ("executions", "EXISTS (SELECT 1 FROM executions WHERE id = NEW.id OR decision_id = NEW.decision_id"
                           " OR idempotency_key = NEW.idempotency_key)"),
            ("execution_results", "EXISTS (SELECT 1 FROM execution_results WHERE execution_id = NEW.execution_id)"),
            ("reviewers", "EXISTS (SELECT 1 FROM reviewers WHERE name = NEW.name OR public_key = NEW.public_key)"),
        )),
    # 9: a proposal covers every proposable event of its recipient, one letter per recipient (agents/coordinator.py):
    # a member has a similarity only when it was grouped as a near-duplicate of another model.
    """
    CREATE TABLE review_members_rebuilt (
        event_id INTEGER PRIMARY KEY REFERENCES events(id),
        review_id INTEGER NOT NULL REFERENCES reviews(id),
        model_id INTEGER NOT NULL REFERENCES models(id),
        similarity REAL   -- cosine similarity of the two models' case texts (tools/memory.py), for a near-duplicate
    );
    INSERT INTO review_members_rebuilt (event_id, review_id, model_id, similarity)
        SELECT event_id, review_id, model_id, similarity FROM review_members;
    DROP TABLE review_members;
    ALTER TABLE review_members_rebuilt RENAME TO review_members;
    CREATE INDEX review_members_by_model ON review_members(model_id);
    CREATE INDEX review_members_by_review ON review_members(review_id);
    """,
    # 10: a name is unique among a registry's present models only. Where a registry keeps stable identities
    # (the Hub's _id), a name can pass from one model to another: a repo deleted and another created under its
    # name, or renamed onto a deleted one's name. The model that had it keeps it in its history. And a scan
    # remembers that its listing resumed after an interruption: a model missing from it may have been renamed
    # behind the resume point, so it is only suspected until a listing from the start confirms it.
    """
    ALTER TABLE scans ADD COLUMN listing_resumed INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE models_rebuilt (
        id INTEGER PRIMARY KEY,
        registry_id INTEGER NOT NULL REFERENCES registries(id),
        name TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('present', 'suspected_missing', 'withdrawn', 'deleted')),
        visibility TEXT NOT NULL,
        digest INTEGER NOT NULL,
        last_observation_id INTEGER NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL  -- when an observation or, once it went missing, the last complete scan saw it
    );
    INSERT INTO models_rebuilt SELECT id, registry_id, name, key, state, visibility, digest, last_observation_id,
        first_seen, last_seen FROM models;
    DROP TABLE models;
    ALTER TABLE models_rebuilt RENAME TO models;
    CREATE INDEX models_by_name ON models(registry_id, name);
    CREATE UNIQUE INDEX models_present_name ON models(registry_id, name) WHERE state = 'present';
    CREATE INDEX models_by_key ON models(registry_id, key);
    CREATE INDEX models_suspected ON models(registry_id) WHERE state = 'suspected_missing';
    CREATE INDEX models_withdrawn ON models(registry_id) WHERE state = 'withdrawn';
    """,
    # 11: the console asks for the newest change to any review every two seconds (ReviewQueue.fingerprint): without
    # this index each poll reads every review's draft and evidence pages (30 ms at 10,000 reviews; 1 ms with it).
    "CREATE INDEX reviews_by_update ON reviews(updated_at)",
    # 12: on PostgreSQL the database notifies the consoles of each change their poll looks for
    # (`POSTGRES_MIGRATIONS`). SQLite has no notices and its console polls: nothing changes here.
    "",
)



# The schema on PostgreSQL, at the version of the last migration above, made in one go: migrations 1 to 11 are
# SQLite's history. A later migration is written for both. Columns keep the values SQLite holds (BIGINT ids and
# flags, TEXT times and JSON), so a ledger copied over (`weightkeeper store migrate`) reads back the same. The few
# tables read in insertion order (`ORDER BY rowid` on SQLite) have a `rowid` column of their own.
_APPEND_ONLY = {
    "events": "ledger events are append-only: record a correction as a new event",
    **{table: f"{table} are append-only: record a new row instead"
       for table in ("decisions", "executions", "execution_results", "reviewers")},
}
# What the console's poll looks for (`ReviewQueue.fingerprint`: a review queued or changed, an event recorded) is
# notified on the channel `CHANNEL` (weightkeeper/ledger/notices.py), the table's name as the payload,
# whoever writes it. Once per statement, not per row, and PostgreSQL delivers the same notice once per
# transaction: a scan's batch or a bulk copy sends one.
_NOTICES = f"""
CREATE FUNCTION notify_ledger_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER reviews_are_notified AFTER INSERT OR UPDATE ON reviews
    FOR EACH STATEMENT EXECUTE FUNCTION notify_ledger_change();
CREATE TRIGGER events_are_notified AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_ledger_change();
"""
POSTGRES_SCHEMA = """
CREATE TABLE registries (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    location TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE scans (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    registry_id BIGINT NOT NULL REFERENCES registries(id),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'failed', 'interrupted')),
    phase TEXT NOT NULL CHECK (phase IN ('listing', 'resolving', 'done')),
    cursor TEXT,
    attempts BIGINT NOT NULL DEFAULT 1,
    pages BIGINT NOT NULL DEFAULT 0,
    models_seen BIGINT NOT NULL DEFAULT 0,
    problems BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    listing_resumed BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX scans_by_registry ON scans(registry_id, status);
CREATE TABLE models (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    registry_id BIGINT NOT NULL REFERENCES registries(id),
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('present', 'suspected_missing', 'withdrawn', 'deleted')),
    visibility TEXT NOT NULL,
    digest BIGINT NOT NULL,
    last_observation_id BIGINT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX models_by_name ON models(registry_id, name);
CREATE UNIQUE INDEX models_present_name ON models(registry_id, name) WHERE state = 'present';
CREATE INDEX models_by_key ON models(registry_id, key);
CREATE INDEX models_suspected ON models(registry_id) WHERE state = 'suspected_missing';
CREATE INDEX models_withdrawn ON models(registry_id) WHERE state = 'withdrawn';
CREATE TABLE observations (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    model_id BIGINT NOT NULL REFERENCES models(id),
    scan_id BIGINT NOT NULL REFERENCES scans(id),
    observed_at TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('listing', 'lookup')),
    found BIGINT NOT NULL,
    name TEXT NOT NULL,
    key TEXT,
    revision TEXT,
    created_at TEXT,
    last_modified TEXT,
    visibility TEXT,
    downloads BIGINT,
    likes BIGINT,
    card_digest TEXT,
    license TEXT,
    emissions TEXT,
    training TEXT,
    datasets TEXT,
    shutdown_date TEXT,
    successor TEXT,
    extra TEXT,
    lookup_detail TEXT,
    digest BIGINT
);
CREATE INDEX observations_by_model ON observations(model_id);
CREATE TABLE observation_lineage (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    observation_id BIGINT NOT NULL REFERENCES observations(id),
    base_model TEXT NOT NULL,
    relation TEXT
);
CREATE INDEX lineage_by_observation ON observation_lineage(observation_id);
CREATE INDEX lineage_by_base ON observation_lineage(base_model);
CREATE TABLE observation_files (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    observation_id BIGINT NOT NULL REFERENCES observations(id),
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT
);
CREATE INDEX files_by_observation ON observation_files(observation_id);
CREATE TABLE events (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    registry_id BIGINT NOT NULL REFERENCES registries(id),
    model_id BIGINT REFERENCES models(id),
    scan_id BIGINT REFERENCES scans(id),
    observation_id BIGINT REFERENCES observations(id),
    prior_observation_id BIGINT REFERENCES observations(id),
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_model ON events(model_id);
CREATE INDEX events_by_kind ON events(kind, at);
-- An event's natural key: a scan records an event of a kind once per model, so an append repeated (a batch
-- retried) adds nothing (`ON CONFLICT DO NOTHING`). It serves as the index of events by scan too. Events of
-- no scan (the review queue's) have none: NULLs are distinct.
CREATE UNIQUE INDEX events_by_scan ON events(scan_id, model_id, kind);
CREATE TABLE problems (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    scan_id BIGINT NOT NULL REFERENCES scans(id),
    at TEXT NOT NULL,
    model_name TEXT,
    message TEXT NOT NULL
);
CREATE INDEX problems_by_scan ON problems(scan_id);
CREATE TABLE deferred_records (
    scan_id BIGINT NOT NULL REFERENCES scans(id),
    name TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (scan_id, name)
);
CREATE TABLE file_digests (
    registry_id BIGINT NOT NULL REFERENCES registries(id),
    path TEXT NOT NULL,
    size BIGINT NOT NULL,
    stamp TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (registry_id, path)
);
CREATE TABLE scan_listed (
    scan_id BIGINT NOT NULL REFERENCES scans(id),
    part BIGINT NOT NULL,
    model_ids TEXT NOT NULL,
    PRIMARY KEY (scan_id, part)
);
CREATE TABLE scan_leases (
    registry_id BIGINT PRIMARY KEY REFERENCES registries(id),
    holder TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE adapter_cache (
    registry_id BIGINT NOT NULL REFERENCES registries(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (registry_id, key)
);
CREATE TABLE reviews (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    thread_id TEXT NOT NULL,
    interrupt_id TEXT NOT NULL,
    registry_id BIGINT NOT NULL REFERENCES registries(id),
    model_id BIGINT NOT NULL REFERENCES models(id),
    event_id BIGINT NOT NULL REFERENCES events(id),
    recipient TEXT NOT NULL,
    priority DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'deferred', 'executed')),
    version BIGINT NOT NULL DEFAULT 1,
    draft TEXT NOT NULL,
    evidence TEXT NOT NULL,
    findings TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (thread_id, interrupt_id)
);
CREATE INDEX reviews_by_status ON reviews(status, priority);
CREATE INDEX reviews_by_model ON reviews(model_id, status);
CREATE INDEX reviews_by_recipient ON reviews(recipient, created_at);
CREATE INDEX reviews_by_update ON reviews(updated_at);
CREATE TABLE reviewers (
    rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    name TEXT PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE decisions (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    review_id BIGINT NOT NULL REFERENCES reviews(id),
    version BIGINT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject', 'defer', 'edit')),
    action_index BIGINT,
    payload_sha256 TEXT,
    reviewer TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('cli', 'tui', 'demo')),
    reason TEXT,
    overrides TEXT NOT NULL DEFAULT '[]',
    previous TEXT NOT NULL DEFAULT '',
    scheme TEXT NOT NULL DEFAULT 'ed25519' CHECK (scheme IN ('ed25519', 'hmac-sha256')),
    decided_at TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE INDEX decisions_by_review ON decisions(review_id);
CREATE UNIQUE INDEX one_approval_per_action ON decisions(review_id, version, action_index)
    WHERE decision = 'approve' AND scheme = 'ed25519';
CREATE TABLE executions (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    decision_id BIGINT NOT NULL UNIQUE REFERENCES decisions(id),
    idempotency_key TEXT NOT NULL UNIQUE,
    claimed_at TEXT NOT NULL
);
CREATE TABLE execution_results (
    execution_id BIGINT PRIMARY KEY REFERENCES executions(id),
    finished_at TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('done', 'failed')),
    detail TEXT NOT NULL
);
CREATE TABLE execution_leases (
    idempotency_key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE contact_blocks (
    owner TEXT PRIMARY KEY,
    reason TEXT,
    blocked_at TEXT NOT NULL,
    blocked_by TEXT NOT NULL
);
CREATE TABLE review_members (
    event_id BIGINT PRIMARY KEY REFERENCES events(id),
    review_id BIGINT NOT NULL REFERENCES reviews(id),
    model_id BIGINT NOT NULL REFERENCES models(id),
    similarity DOUBLE PRECISION
);
CREATE INDEX review_members_by_model ON review_members(model_id);
CREATE INDEX review_members_by_review ON review_members(review_id);

-- The database refuses what the code never does to an append-only table: an UPDATE (an upsert's included),
-- a DELETE, a TRUNCATE.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation', MESSAGE = TG_ARGV[0];
END $$;
""" + "".join(
    f"""
CREATE TRIGGER {table}_are_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION refuse_change('{message}');
CREATE TRIGGER {table}_are_never_truncated BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('{message}');
""" for table, message in _APPEND_ONLY.items()) + _NOTICES + """
CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL);
"""
# A PostgreSQL database made at an earlier version is brought to the current one by these steps, in order
# (version -> its DDL); every migration after 11 has one.
POSTGRES_MIGRATIONS: dict[int, str] = {12: _NOTICES}
# Held while a first process creates the schema, so that a second waits and then finds it made.
_SCHEMA_LOCK = 0x776B0000


def migrate(conn: Connection) -> int:
    """Bring the ledger's schema to the current version (see `migrate_sqlite`, `create_postgres`); return it."""
    return create_postgres(conn) if conn.dialect == "postgres" else migrate_sqlite(conn)


def create_postgres(conn: PostgresConnection) -> int:
    """Create the schema in an empty PostgreSQL database, or bring one made at an earlier version to this one
    (`POSTGRES_MIGRATIONS`, all in one transaction); refuse one at a version it cannot."""
    import psycopg

    with conn.raw.transaction():
        conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        if conn.raw.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
            conn.raw.execute(POSTGRES_SCHEMA)
            _record_version(conn, len(MIGRATIONS))
            return len(MIGRATIONS)
        current = conn.raw.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
        steps = range(current + 1, len(MIGRATIONS) + 1)
        if steps and all(version in POSTGRES_MIGRATIONS for version in steps):
            try:
                for version in steps:
                    conn.raw.execute(POSTGRES_MIGRATIONS[version])
                    _record_version(conn, version)
            except psycopg.errors.InsufficientPrivilege as exc:
                raise LedgerError(f"the ledger has schema version {current} and migrating it to {len(MIGRATIONS)} "
                                  f"was refused ({exc.diag.message_primary}): run a weightkeeper command once as "
                                  "the PostgreSQL role that owns its tables (the one that made them)") from None
            return len(MIGRATIONS)
    if current != len(MIGRATIONS):
        upgrade = "upgrade weightkeeper" if current > len(MIGRATIONS) else "its migration is not written yet"
        raise LedgerError(f"the ledger has schema version {current} and this weightkeeper knows {len(MIGRATIONS)}; "
                          f"{upgrade}")
    return current


def _record_version(conn: PostgresConnection, version: int) -> None:
    conn.raw.execute("INSERT INTO schema_migrations VALUES"
                     " (%s, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))", (version,))


def migrate_sqlite(conn: sqlite3.Connection) -> int:
    """Apply every migration the SQLite database has not seen; return the schema version."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
    if current > len(MIGRATIONS):
        raise LedgerError(
            f"the ledger has schema version {current}, newer than this weightkeeper knows ({len(MIGRATIONS)}); "
            "upgrade weightkeeper"
        )
    if current == len(MIGRATIONS):
        return current
    # Off while a migration rebuilds a table others reference (it could not be dropped otherwise), and checked
    # before each commit instead; the setting cannot change inside a transaction.
    enforced = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute("PRAGMA foreign_keys=OFF")
    try:
        for version in range(current + 1, len(MIGRATIONS) + 1):
            # One transaction per migration: a failed migration leaves the previous version intact.
            conn.executescript(
                f"BEGIN IMMEDIATE; {MIGRATIONS[version - 1]};"
                f" INSERT INTO schema_migrations VALUES ({version}, strftime('%Y-%m-%dT%H:%M:%fZ'));"
            )
            broken = conn.execute("PRAGMA foreign_key_check").fetchone()
            if broken is not None:
                raise LedgerError(f"migration {version} would leave {broken[0]} row {broken[1]} pointing at a "
                                  f"missing {broken[2]} row; the ledger is left at version {version - 1}")
            conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")
    return len(MIGRATIONS)
