-- claimd schema, version 4: the formats of the tables a claim writes are declared once,
-- as domains, instead of as CHECK constraints on each table.
--
-- Why: PostgreSQL reads a table's CHECK constraints back from their stored text every
-- time a statement writes to the table, while a domain's constraints are read once
-- per connection and cached. With a dozen checks on the four tables a claim writes,
-- that reading was about a fifth of the claim statement's time (tests/bench/db.sh).
-- The rules are unchanged: every value is still checked on every write. A domain's
-- CHECK passes NULL, as the "x IS NULL OR ..." table checks did; NOT NULL stays on
-- the columns. The devices table, written only by imports, keeps its table checks.

CREATE DOMAIN mac_address AS text CHECK (VALUE ~ '^[0-9A-F]{12}$');
COMMENT ON DOMAIN mac_address IS 'Base MAC address: 12 upper-case hex digits, no separators.';
CREATE DOMAIN auth_id_text AS text CHECK (VALUE ~ '^[A-Za-z0-9_-]{1,63}$');
COMMENT ON DOMAIN auth_id_text IS 'An auth_id as initiate gives it out: 1-63 of [A-Za-z0-9_-].';
CREATE DOMAIN node_id_text AS text CHECK (VALUE ~ '^[A-Za-z0-9_-]{1,64}$');
COMMENT ON DOMAIN node_id_text IS 'A node_id (certificate CN): 1-64 of [A-Za-z0-9_-].';
CREATE DOMAIN serial_hex AS text CHECK (VALUE ~ '^[0-9A-F]{32}$');
COMMENT ON DOMAIN serial_hex IS 'A certificate serial: 16 bytes as upper-case hex.';
CREATE DOMAIN platform_name AS text CHECK (VALUE ~ '^[a-z0-9_-]{1,32}$');
COMMENT ON DOMAIN platform_name IS 'An IDF target name in lower case (esp32s3, esp32c3, ...).';
CREATE DOMAIN user_id_text AS text CHECK (length(VALUE) BETWEEN 1 AND 255);
COMMENT ON DOMAIN user_id_text IS 'A user id from an access token.';
CREATE DOMAIN short_text AS text CHECK (length(VALUE) <= 64);
COMMENT ON DOMAIN short_text IS 'A short free-form value: a client address, a request id.';
CREATE DOMAIN challenge_text AS text CHECK (length(VALUE) BETWEEN 1 AND 128);
COMMENT ON DOMAIN challenge_text IS 'A challenge as sent to a device.';
CREATE DOMAIN pem_text AS text CHECK (length(VALUE) BETWEEN 100 AND 8192);
COMMENT ON DOMAIN pem_text IS 'One PEM certificate.';
CREATE DOMAIN sha256_bytes AS bytea CHECK (octet_length(VALUE) = 32);
COMMENT ON DOMAIN sha256_bytes IS 'A SHA-256 digest.';
CREATE DOMAIN policies_text AS text CHECK (length(VALUE) <= 256);
COMMENT ON DOMAIN policies_text IS 'A node_policies string as a device sent it.';
CREATE DOMAIN counter AS integer CHECK (VALUE >= 0);
COMMENT ON DOMAIN counter IS 'A count: zero or more.';
CREATE DOMAIN reason_code AS text CHECK (VALUE ~ '^[A-Z_]{1,64}$');
COMMENT ON DOMAIN reason_code IS 'An error code name from errors.def, or OK.';
CREATE DOMAIN audit_event AS text CHECK (VALUE IN ('initiate', 'verify'));
COMMENT ON DOMAIN audit_event IS 'initiate or verify.';
CREATE DOMAIN claim_flow AS text CHECK (VALUE IN ('self', 'user'));
COMMENT ON DOMAIN claim_flow IS 'self (device alone) or user (assisted / host-driven).';
CREATE DOMAIN audit_outcome AS text CHECK (VALUE IN ('ok', 'refused', 'error'));
COMMENT ON DOMAIN audit_outcome IS 'ok, refused (client error) or error (server fault).';

ALTER TABLE claim_sessions
    DROP CONSTRAINT claim_sessions_auth_id_check,
    DROP CONSTRAINT claim_sessions_mac_check,
    DROP CONSTRAINT claim_sessions_challenge_check,
    DROP CONSTRAINT claim_sessions_attempts_check,
    ALTER COLUMN auth_id TYPE auth_id_text,
    ALTER COLUMN mac TYPE mac_address,
    ALTER COLUMN challenge TYPE challenge_text,
    ALTER COLUMN attempts TYPE counter;

ALTER TABLE nodes
    DROP CONSTRAINT nodes_node_id_check,
    DROP CONSTRAINT nodes_mac_check,
    DROP CONSTRAINT nodes_user_id_check,
    DROP CONSTRAINT nodes_node_policies_check,
    DROP CONSTRAINT nodes_platform_check,
    ALTER COLUMN node_id TYPE node_id_text,
    ALTER COLUMN mac TYPE mac_address,
    ALTER COLUMN user_id TYPE user_id_text,
    ALTER COLUMN node_policies TYPE policies_text,
    ALTER COLUMN platform TYPE platform_name;

ALTER TABLE certificates
    DROP CONSTRAINT certificates_serial_check,
    DROP CONSTRAINT certificates_key_sha256_check,
    DROP CONSTRAINT certificates_pem_check,
    DROP CONSTRAINT certificates_auth_id_check,
    ALTER COLUMN serial TYPE serial_hex,
    ALTER COLUMN node_id TYPE node_id_text,
    ALTER COLUMN key_sha256 TYPE sha256_bytes,
    ALTER COLUMN pem TYPE pem_text,
    ALTER COLUMN auth_id TYPE auth_id_text;

ALTER TABLE audit
    DROP CONSTRAINT audit_event_check,
    DROP CONSTRAINT audit_flow_check,
    DROP CONSTRAINT audit_outcome_check,
    DROP CONSTRAINT audit_reason_check,
    DROP CONSTRAINT audit_mac_check,
    DROP CONSTRAINT audit_node_id_check,
    DROP CONSTRAINT audit_user_id_check,
    DROP CONSTRAINT audit_remote_addr_check,
    DROP CONSTRAINT audit_request_id_check,
    DROP CONSTRAINT audit_serial_check,
    ALTER COLUMN event TYPE audit_event,
    ALTER COLUMN flow TYPE claim_flow,
    ALTER COLUMN outcome TYPE audit_outcome,
    ALTER COLUMN reason TYPE reason_code,
    ALTER COLUMN mac TYPE mac_address,
    ALTER COLUMN node_id TYPE node_id_text,
    ALTER COLUMN user_id TYPE user_id_text,
    ALTER COLUMN remote_addr TYPE short_text,
    ALTER COLUMN request_id TYPE short_text,
    ALTER COLUMN serial TYPE serial_hex;

ALTER TABLE mac_lockouts
    DROP CONSTRAINT mac_lockouts_mac_check,
    DROP CONSTRAINT mac_lockouts_failures_check,
    DROP CONSTRAINT mac_lockouts_lockouts_check,
    ALTER COLUMN mac TYPE mac_address,
    ALTER COLUMN failures TYPE counter,
    ALTER COLUMN lockouts TYPE counter;
