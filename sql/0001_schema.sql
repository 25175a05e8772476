-- claimd schema, version 1. Applied by 'claimctl migrate' in one transaction.
-- Released migrations are never edited: changes go into a new numbered file.

CREATE TABLE devices (
    mac              text PRIMARY KEY CHECK (mac ~ '^[0-9A-F]{12}$'),
    platform         text NOT NULL CHECK (platform ~ '^[a-z0-9_-]{1,32}$'),
    efuse_key_sealed bytea NOT NULL CHECK (octet_length(efuse_key_sealed) = 56),
    efuse_key_tag    bytea NOT NULL CHECK (octet_length(efuse_key_tag) = 16),
    registered_at    timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE devices IS 'Chips registered at manufacturing for self claiming (claimctl devices import).';
COMMENT ON COLUMN devices.mac IS 'Base MAC address: 12 upper-case hex digits, no separators.';
COMMENT ON COLUMN devices.platform IS 'IDF target name in lower case (esp32s3, esp32c3, ...).';
COMMENT ON COLUMN devices.efuse_key_sealed IS 'OPTIONAL_UNIQUE_ID (16 bytes) sealed with XChaCha20-Poly1305 under the secrets key, the MAC as associated data: nonce (24) || ciphertext+tag (32).';
COMMENT ON COLUMN devices.efuse_key_tag IS 'Keyed BLAKE2b fingerprint of (MAC, eFuse key): tells a re-import of the same key from a different one without decrypting.';
COMMENT ON COLUMN devices.registered_at IS 'When the row was first imported.';
COMMENT ON COLUMN devices.updated_at IS 'When the key or platform was last replaced (--replace).';

CREATE TABLE claim_sessions (
    auth_id    text PRIMARY KEY CHECK (auth_id ~ '^[A-Za-z0-9_-]{1,63}$'),
    mac        text NOT NULL CHECK (mac ~ '^[0-9A-F]{12}$'),
    challenge  text NOT NULL CHECK (length(challenge) BETWEEN 1 AND 128),
    expires_at timestamptz NOT NULL,
    attempts   integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    used       boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX claim_sessions_expires_at ON claim_sessions (expires_at);
COMMENT ON TABLE claim_sessions IS 'Self-claim sessions that reached verify. Initiate writes nothing here: the auth_id is an authenticated token; a row appears on the first verify and makes the challenge single-use.';
COMMENT ON COLUMN claim_sessions.auth_id IS 'The auth_id given out by initiate.';
COMMENT ON COLUMN claim_sessions.mac IS 'The device the auth_id was issued to.';
COMMENT ON COLUMN claim_sessions.challenge IS 'The challenge the device had to answer (public once sent).';
COMMENT ON COLUMN claim_sessions.expires_at IS 'End of the challenge TTL; rows past it may be deleted.';
COMMENT ON COLUMN claim_sessions.attempts IS 'Wrong challenge responses so far; at claim.max_attempts the auth_id is burned.';
COMMENT ON COLUMN claim_sessions.used IS 'True once a verify succeeded: the auth_id can never succeed again.';
COMMENT ON COLUMN claim_sessions.created_at IS 'First verify seen for this auth_id.';

CREATE TABLE nodes (
    node_id       text PRIMARY KEY CHECK (node_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    mac           text NOT NULL CHECK (mac ~ '^[0-9A-F]{12}$'),
    user_id       text CHECK (user_id IS NULL OR length(user_id) BETWEEN 1 AND 255),
    node_policies text CHECK (node_policies IS NULL OR length(node_policies) <= 256),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX nodes_self_mac ON nodes (mac) WHERE user_id IS NULL;
CREATE UNIQUE INDEX nodes_user_mac ON nodes (user_id, mac) WHERE user_id IS NOT NULL;
COMMENT ON TABLE nodes IS 'Cloud identities: node_id <-> MAC <-> user. Self-claimed nodes have node_id = MAC and no user.';
COMMENT ON COLUMN nodes.node_id IS 'The certificate CN and the cloud identity.';
COMMENT ON COLUMN nodes.mac IS 'The chip this node runs on.';
COMMENT ON COLUMN nodes.user_id IS 'The user who claimed it (assisted or host-driven claiming); NULL for self claiming.';
COMMENT ON COLUMN nodes.node_policies IS 'The node_policies string of the last verify (e.g. videostream), if any.';
COMMENT ON COLUMN nodes.created_at IS 'First successful claim.';
COMMENT ON COLUMN nodes.updated_at IS 'Last successful claim.';

CREATE TABLE certificates (
    serial     text PRIMARY KEY CHECK (serial ~ '^[0-9A-F]{32}$'),
    node_id    text NOT NULL REFERENCES nodes (node_id),
    key_sha256 bytea NOT NULL CHECK (octet_length(key_sha256) = 32),
    not_before timestamptz NOT NULL,
    not_after  timestamptz NOT NULL CHECK (not_after > not_before),
    pem        text NOT NULL CHECK (length(pem) BETWEEN 100 AND 8192),
    auth_id    text CHECK (auth_id IS NULL OR length(auth_id) <= 63),
    issued_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX certificates_node_id ON certificates (node_id);
COMMENT ON TABLE certificates IS 'Every certificate ever issued; re-claims add rows, nothing is overwritten.';
COMMENT ON COLUMN certificates.serial IS '16 random bytes as upper-case hex (top bit clear).';
COMMENT ON COLUMN certificates.node_id IS 'Subject CN.';
COMMENT ON COLUMN certificates.key_sha256 IS 'SHA-256 of the SubjectPublicKeyInfo DER: shows re-claims with the same device key.';
COMMENT ON COLUMN certificates.not_before IS 'Validity start.';
COMMENT ON COLUMN certificates.not_after IS 'Validity end.';
COMMENT ON COLUMN certificates.pem IS 'The leaf certificate, PEM.';
COMMENT ON COLUMN certificates.auth_id IS 'The self-claim session that produced it, if any.';
COMMENT ON COLUMN certificates.issued_at IS 'When it was signed and committed.';

CREATE TABLE audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    event       text NOT NULL CHECK (event IN ('initiate', 'verify')),
    flow        text NOT NULL CHECK (flow IN ('self', 'user')),
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'refused', 'error')),
    reason      text NOT NULL CHECK (reason ~ '^[A-Z_]{1,64}$'),
    mac         text CHECK (mac IS NULL OR mac ~ '^[0-9A-F]{12}$'),
    node_id     text CHECK (node_id IS NULL OR length(node_id) <= 64),
    user_id     text CHECK (user_id IS NULL OR length(user_id) <= 255),
    remote_addr text CHECK (remote_addr IS NULL OR length(remote_addr) <= 64),
    request_id  text CHECK (request_id IS NULL OR length(request_id) <= 64),
    serial      text CHECK (serial IS NULL OR serial ~ '^[0-9A-F]{32}$')
);
CREATE INDEX audit_mac_at ON audit (mac, at);
COMMENT ON TABLE audit IS 'Append-only trail of every initiate and verify, success or failure.';
COMMENT ON COLUMN audit.id IS 'Order of insertion.';
COMMENT ON COLUMN audit.at IS 'When the event was recorded.';
COMMENT ON COLUMN audit.event IS 'initiate or verify.';
COMMENT ON COLUMN audit.flow IS 'self (device alone) or user (assisted / host-driven).';
COMMENT ON COLUMN audit.outcome IS 'ok, refused (client error) or error (server fault).';
COMMENT ON COLUMN audit.reason IS 'Error code name from errors.def, or OK.';
COMMENT ON COLUMN audit.mac IS 'The device, when the request named a valid one.';
COMMENT ON COLUMN audit.node_id IS 'The node, when known.';
COMMENT ON COLUMN audit.user_id IS 'The user, for the user flow.';
COMMENT ON COLUMN audit.remote_addr IS 'The client address (after trusted-proxy resolution).';
COMMENT ON COLUMN audit.request_id IS 'The request id also written to the daemon log.';
COMMENT ON COLUMN audit.serial IS 'The certificate issued, on success.';

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit table is append-only';
END;
$$;
COMMENT ON FUNCTION audit_append_only() IS 'Refuses UPDATE, DELETE and TRUNCATE on audit.';
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
