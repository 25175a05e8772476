-- claimd schema, version 8: Matter device attestation certificates (protocol.md section 6)
-- and node_policies as a list (section 7). A DAC is recorded like any certificate, so
-- revocation and lookups work for it; its profile says which issuer signed it, so the
-- CA's CRL lists only what the CA issued. The policies a certificate was issued with
-- are kept per certificate, in the canonical spelling claim.c writes.
ALTER DOMAIN claim_flow DROP CONSTRAINT claim_flow_values;
ALTER DOMAIN claim_flow ADD CONSTRAINT claim_flow_values
    CHECK (VALUE IN ('self', 'user', 'operator', 'matter'));
COMMENT ON DOMAIN claim_flow IS 'self (device alone), user (assisted / host-driven), matter (host-driven, a Matter DAC) or operator (claimctl, the management API).';

CREATE DOMAIN policies_list AS text
    CHECK (VALUE IN ('mqtt', 'videostream', 'mqtt,videostream'));
COMMENT ON DOMAIN policies_list IS 'A node_policies list in canonical form: mqtt, videostream, or both in that order.';
CREATE DOMAIN cert_profile AS text CHECK (VALUE IN ('node', 'matter-dac'));
COMMENT ON DOMAIN cert_profile IS 'node (signed by the CA: clientAuth leaf) or matter-dac (signed by the Matter PAI).';

ALTER TABLE certificates ADD COLUMN node_policies policies_list;
COMMENT ON COLUMN certificates.node_policies IS 'The policies granted with this certificate; NULL for certificates issued before schema 8.';
ALTER TABLE certificates ADD COLUMN profile cert_profile NOT NULL DEFAULT 'node';
COMMENT ON COLUMN certificates.profile IS 'Which profile and issuer: node (the CA) or matter-dac (the Matter PAI).';
