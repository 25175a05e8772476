-- claimd schema, version 10: ownership transfer (claim.transfer). When a user's claim
-- proves possession of the key of a device another user holds, the other user's node
-- is released in the claim's own transaction and the trail says so with one 'transfer'
-- row: its user_id is the previous holder, its detail names the new one. A user id is
-- up to 255 characters, so a note naming one ("to " and the id) needs more than the
-- 256 characters notes had; no existing note changes.
ALTER DOMAIN audit_event DROP CONSTRAINT audit_event_values;
ALTER DOMAIN audit_event ADD CONSTRAINT audit_event_values
    CHECK (VALUE IN ('initiate', 'verify', 'revoke', 'release', 'register', 'transfer'));
COMMENT ON DOMAIN audit_event IS 'initiate, verify, revoke, release, register (the management API) or transfer (a user''s claim released another user''s node of the same device key).';
-- detail_text's CHECK got a generated name in schema 5: found by domain, not by name.
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint WHERE contypid = 'detail_text'::regtype LOOP
        EXECUTE format('ALTER DOMAIN detail_text DROP CONSTRAINT %I', c.conname);
    END LOOP;
END $$;
ALTER DOMAIN detail_text ADD CONSTRAINT detail_text_length CHECK (length(VALUE) <= 300);
COMMENT ON DOMAIN detail_text IS 'A free-form note of at most 300 characters.';
COMMENT ON COLUMN audit.detail IS 'For operator actions: who, and the RFC 5280 reason of a revocation; for a transfer: "to " and the new holder''s user id.';
