-- claimd schema, version 2: assisted and host-driven claiming (a user claims a node).

ALTER TABLE nodes ADD COLUMN platform text
    CHECK (platform IS NULL OR platform ~ '^[a-z0-9_-]{1,32}$');
ALTER TABLE nodes ADD COLUMN pending_until timestamptz;
ALTER TABLE nodes ADD COLUMN claimed_at timestamptz;
UPDATE nodes SET claimed_at = created_at;
COMMENT ON COLUMN nodes.platform IS 'The platform the last initiate named (any IDF target, or "host" from the CLI).';
COMMENT ON COLUMN nodes.pending_until IS 'User flow: set by each initiate to now + challenge TTL; a verify must come before it and clears it (single use).';
COMMENT ON COLUMN nodes.claimed_at IS 'First successful verify; NULL while a user-initiated node has never been claimed.';

CREATE TABLE user_quotas (
    user_id    text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 255),
    quota      integer NOT NULL CHECK (quota >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE user_quotas IS 'Per-user overrides of users.quota (claimctl users quota USER N).';
COMMENT ON COLUMN user_quotas.user_id IS 'The user, as the access token names it.';
COMMENT ON COLUMN user_quotas.quota IS 'Distinct MACs this user may hold; 0 = unlimited.';
COMMENT ON COLUMN user_quotas.updated_at IS 'When the override was last set.';
