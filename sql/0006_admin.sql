-- claimd schema, version 6: devices registered through the management API join the
-- audit trail (one 'register' row per request, naming the token in detail).
ALTER DOMAIN audit_event DROP CONSTRAINT audit_event_values;
ALTER DOMAIN audit_event ADD CONSTRAINT audit_event_values
    CHECK (VALUE IN ('initiate', 'verify', 'revoke', 'release', 'register'));
COMMENT ON DOMAIN audit_event IS 'initiate, verify, revoke, release or register (the management API).';
