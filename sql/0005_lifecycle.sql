-- claimd schema, version 5: the certificate lifecycle. Certificates can be revoked
-- (RFC 5280 reason codes) or superseded by a re-claim, nodes can be released, CRLs
-- are numbered and stored once for every replica, and operator actions are audited.

-- RFC 5280 section 5.3.1 CRLReason codes (7 is not used).
CREATE DOMAIN crl_reason AS smallint CHECK (VALUE IN (0, 1, 2, 3, 4, 5, 6, 8, 9, 10));
COMMENT ON DOMAIN crl_reason IS 'An RFC 5280 CRLReason code: 0 unspecified, 1 keyCompromise, 2 cACompromise, 3 affiliationChanged, 4 superseded, 5 cessationOfOperation, 6 certificateHold, 8 removeFromCRL, 9 privilegeWithdrawn, 10 aACompromise.';
CREATE DOMAIN detail_text AS text CHECK (length(VALUE) <= 256);
COMMENT ON DOMAIN detail_text IS 'A free-form note of at most 256 characters.';

ALTER TABLE certificates
    ADD COLUMN revoked_at timestamptz,
    ADD COLUMN revocation_reason crl_reason,
    ADD COLUMN revoked_by detail_text,
    ADD CONSTRAINT certificates_revoked_whole
        CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL));
CREATE INDEX certificates_revoked ON certificates (revoked_at) WHERE revoked_at IS NOT NULL;
COMMENT ON COLUMN certificates.revoked_at IS 'When it was revoked (listed on every CRL from then on); NULL while not revoked.';
COMMENT ON COLUMN certificates.revocation_reason IS 'Why: the RFC 5280 CRLReason code (4 superseded: a re-claim replaced it).';
COMMENT ON COLUMN certificates.revoked_by IS 'Who revoked it (an operator, or the re-claim or release that did).';

ALTER TABLE nodes ADD COLUMN released_at timestamptz;
COMMENT ON COLUMN nodes.released_at IS 'When an operator released the node: its certificates are revoked and its (user, MAC) is free for a new node_id. NULL while it is live.';
-- A released node no longer holds its (user, MAC): that uniqueness is over live nodes
-- only. A self-claimed node's node_id is its MAC (protocol.md 2.2), so the primary key
-- already makes it one per MAC, released or not (a released one comes back on the next
-- self claim). The unique index on self nodes' MACs said the same a second time, and a
-- second unique index is one that INSERT ... ON CONFLICT (node_id) does not arbitrate:
-- two self claims of one device racing could fail on it with a unique violation
-- instead of one updating the row the other made. A plain index serves the lookups.
DROP INDEX nodes_self_mac;
CREATE INDEX nodes_mac ON nodes (mac);
DROP INDEX nodes_user_mac;
CREATE UNIQUE INDEX nodes_user_mac ON nodes (user_id, mac)
    WHERE user_id IS NOT NULL AND released_at IS NULL;

CREATE TABLE crls (
    number        bigint PRIMARY KEY CHECK (number > 0),
    issuer_key_id sha256_bytes NOT NULL,
    revoked_count bigint NOT NULL CHECK (revoked_count >= 0),
    this_update   timestamptz NOT NULL,
    next_update   timestamptz NOT NULL CHECK (next_update > this_update),
    der           bytea NOT NULL
);
CREATE INDEX crls_issuer ON crls (issuer_key_id, number);
COMMENT ON TABLE crls IS 'Every CRL issued, so that all replicas serve the same one and its number only grows.';
COMMENT ON COLUMN crls.number IS 'The cRLNumber extension (RFC 5280 5.2.3): one more than the last, across replicas.';
COMMENT ON COLUMN crls.issuer_key_id IS 'SHA-256 of the signing CA certificate''s public key: a new CA gets its own CRLs.';
COMMENT ON COLUMN crls.revoked_count IS 'How many revoked certificates it lists: a revocation committed later makes it stale.';
COMMENT ON COLUMN crls.this_update IS 'thisUpdate.';
COMMENT ON COLUMN crls.next_update IS 'nextUpdate (revocation.crl_hours after thisUpdate).';
COMMENT ON COLUMN crls.der IS 'The signed CRL, DER.';

-- Operator actions join the audit trail, with a note saying who and why.
-- (The domains' CHECK constraints got generated names in schema 4, audit_event_check1
-- among them, so they are found by domain rather than by name.)
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conname, contypid::regtype AS dom FROM pg_constraint
             WHERE contypid IN ('audit_event'::regtype, 'claim_flow'::regtype) LOOP
        EXECUTE format('ALTER DOMAIN %s DROP CONSTRAINT %I', c.dom, c.conname);
    END LOOP;
END $$;
ALTER DOMAIN audit_event ADD CONSTRAINT audit_event_values
    CHECK (VALUE IN ('initiate', 'verify', 'revoke', 'release'));
COMMENT ON DOMAIN audit_event IS 'initiate, verify, revoke or release.';
ALTER DOMAIN claim_flow ADD CONSTRAINT claim_flow_values
    CHECK (VALUE IN ('self', 'user', 'operator'));
COMMENT ON DOMAIN claim_flow IS 'self (device alone), user (assisted / host-driven) or operator (claimctl, the management API).';
ALTER TABLE audit ADD COLUMN detail detail_text;
COMMENT ON COLUMN audit.detail IS 'For operator actions: who, and the RFC 5280 reason of a revocation.';
